"""Sample-quality metrics: Fréchet distance (FID) on the batched trace-sqrt op, feature statistics,
Inception Score, KID, k-NN precision/recall/density/coverage, mode-collapse counts, and the
feature networks (the shipped digits classifier; the FID Inception for users with its weights)."""
from gandyn.metrics.digits_classifier import DigitsFeatures, load_digits_classifier
from gandyn.metrics.feature_stats import FeatureStats
from gandyn.metrics.frechet import (FrechetDiagnostics, FrechetReference, frechet_distance,
                                    frechet_distance_from_features)
from gandyn.metrics.inception_score import inception_score
from gandyn.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from gandyn.metrics.modes import mixture_mode_metrics, reverse_kl_to_uniform, stacked_mode_metrics
from gandyn.metrics.precision_recall import knn_radii, precision_recall

__all__ = ["FeatureStats", "FrechetDiagnostics", "FrechetReference", "frechet_distance",
           "frechet_distance_from_features", "inception_score", "kid", "mmd2_unbiased", "polynomial_kernel",
           "precision_recall", "knn_radii", "mixture_mode_metrics", "stacked_mode_metrics",
           "reverse_kl_to_uniform", "DigitsFeatures", "load_digits_classifier", "InceptionFeatures"]


def __getattr__(name):
    # InceptionFeatures imports torchvision and pytorch-fid: only on first use.
    if name == "InceptionFeatures":
        from gandyn.metrics.inception import InceptionFeatures
        return InceptionFeatures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
