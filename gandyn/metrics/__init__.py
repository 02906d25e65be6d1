"""Sample-quality metrics: Fréchet distance (FID) on the batched trace-sqrt op, feature statistics."""
from gandyn.metrics.feature_stats import FeatureStats
from gandyn.metrics.frechet import (FrechetDiagnostics, FrechetReference, frechet_distance,
                                    frechet_distance_from_features)

__all__ = ["FeatureStats", "FrechetDiagnostics", "FrechetReference", "frechet_distance",
           "frechet_distance_from_features"]
