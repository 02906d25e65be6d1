"""Diagnostics of a game at a point: its Jacobian, how rotational it is, its eigenvalues,
whether it is a differential Nash equilibrium, and the optimizers' update maps.

Everything is written against the Game protocol (gandyn.games.base) and needs
only Jacobian–vector products of the vector field: dense matrices for small
games, matrix-free Arnoldi/Lanczos (ARPACK) for networks.
"""
from gandyn.diagnostics.cli import diagnose
from gandyn.diagnostics.decomposition import decompose, rotation
from gandyn.diagnostics.eigen import hessian_eigvals, jacobian_eigvals
from gandyn.diagnostics.jacobian import JacobianOperator, game_jacobian
from gandyn.diagnostics.nash import NashReport, PlayerReport, nash_report
from gandyn.diagnostics.path_angle import path_angle
from gandyn.diagnostics.summary import summary
from gandyn.diagnostics.update_map import update_jacobian, update_spectral_radius

__all__ = ["game_jacobian", "JacobianOperator", "jacobian_eigvals", "hessian_eigvals", "decompose", "rotation",
           "nash_report", "NashReport", "PlayerReport", "path_angle", "summary", "update_jacobian",
           "update_spectral_radius", "diagnose"]
