r"""Graph property prediction with Graph Segment Training
(`Cao et al., NeurIPS 2023 <https://arxiv.org/abs/2305.12322>`_): splitting
graphs into segments, batching them, segment encoders, and the GST / +E / +F
/ +D training variants."""
from .encoder import SegmentEncoder
from .loader import SegmentBatch, SegmentLoader, Segments
from .model import VARIANTS, GSTModel, Variant
from .partition import SEGMENT_METHODS, SegmentedDataset, segment_graph

__all__ = [
    'segment_graph',
    'SegmentedDataset',
    'SEGMENT_METHODS',
    'Segments',
    'SegmentBatch',
    'SegmentLoader',
    'SegmentEncoder',
    'GSTModel',
    'Variant',
    'VARIANTS',
]
