"""Selection numerics shared by acquisition strategies, one module per algorithm.

* ``distances``   chunked squared distances, nearest centre(s)
* ``uncertainty`` entropy / margin / least-confidence scores and the stable top-B rule
* ``kcenter``     greedy k-center (CoreSet, CoreGCN)
* ``d2``          D²-sampling, k-means++ seeding (BADGE)
* ``kmeans``      greedy k-means++ seeding, weighted Lloyd k-means, nearest sample to each centroid (ALFA-Mix, CEC, TypiClust)
* ``knn``         exact and inverted-file k nearest neighbours (CEC)

Nothing here builds an N×N (or N×C·D) matrix; see each module for the exact
algorithm and its reference.
"""

from .d2 import d2_sample
from .distances import CHUNK_ELEMS, as_tensor, device_of, min_sq_dist_to, nearest_two, rows_per_chunk, sq_dists
from .kcenter import kcenter_greedy
from .kmeans import greedy_kmeanspp, kmeans, nearest_to_centres, reassign_moved
from .knn import knn, knn_exact, knn_ivf, knn_rows_exact
from .uncertainty import entropy_from_logits, least_confidence_scores, lowest_k, margin_scores

__all__ = [
    "CHUNK_ELEMS",
    "as_tensor",
    "device_of",
    "d2_sample",
    "entropy_from_logits",
    "greedy_kmeanspp",
    "kcenter_greedy",
    "kmeans",
    "knn",
    "knn_exact",
    "knn_ivf",
    "knn_rows_exact",
    "least_confidence_scores",
    "lowest_k",
    "margin_scores",
    "min_sq_dist_to",
    "nearest_to_centres",
    "nearest_two",
    "reassign_moved",
    "rows_per_chunk",
    "sq_dists",
]
