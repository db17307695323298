"""The TFLite file format, spoken in one place: read into the IR, write, metadata, reference runs.

The bottom of the package: it imports no pipeline stage (only edgereid.errors).
`edgereid.tflite.embedder` (TFLiteEmbedder, run_tflite) needs torch and is imported
on its own.
"""
from edgereid.tflite.flatbuf import METADATA_NAME, check_no_float_ops, read_metadata
from edgereid.tflite.ir import (CUSTOM_PREFIX, Graph, Op, Tensor, custom_kind, pack_bits, pack_int4, unpack_bits,
                                unpack_int4)
from edgereid.tflite.reader import custom_codes, parse_graph, read_graph
from edgereid.tflite.reference import (LCE_CUSTOM_CODES, LCE_VERSION, LceRunner, LiteRTRunner, SegmentedRunner,
                                       TensorSpec, lce_available, reference_runner, seeded_inputs, uses_lce)
from edgereid.tflite.writer import write_graph

__all__ = ["Graph", "Op", "Tensor", "CUSTOM_PREFIX", "custom_kind", "pack_int4", "unpack_int4", "pack_bits",
           "unpack_bits", "read_graph", "parse_graph", "custom_codes", "write_graph", "METADATA_NAME",
           "read_metadata", "check_no_float_ops", "seeded_inputs", "TensorSpec", "LiteRTRunner", "LceRunner",
           "SegmentedRunner",
           "reference_runner", "lce_available", "uses_lce", "LCE_CUSTOM_CODES", "LCE_VERSION"]
