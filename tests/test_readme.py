"""README's Python blocks run as written, and the numbers they state hold."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, capsys):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)  # noqa: S102
    if "Bilinear(" in BLOCKS[index]:  # "Ten lines": the printed distance and evaluation count
        distance, evals = capsys.readouterr().out.split()
        assert float(distance) == pytest.approx(6.6e-09, rel=0.01) and evals == "1000"
    if "frechet_distance(" in BLOCKS[index]:  # "Fused ops": D got gradients; the two samples differ
        assert all(p.grad is not None for p in namespace["D"].parameters())
        assert namespace["fid"].item() > 0.5
    if "Averaged(" in BLOCKS[index]:  # "More of the literature": Gidel et al.'s averaging
        assert capsys.readouterr().out.split("\n")[:2] == ["averaged 0.01", "last 1.03"]
    if "GANGame(" in BLOCKS[index]:  # "GAN runs": the stats every loss evaluation keeps
        assert capsys.readouterr().out.strip() == "['d_fake', 'd_real', 'penalty']"
        assert namespace["opt"].grad_evals == 400 and namespace["game"].steps_drawn == 201
