"""Compression stage: structured pruning to a MACs target, int8 PTQ/QAT, and the one-call pipeline."""
from edgereid.compress.pipeline import compress, load_model
from edgereid.models.resize import resize_to_state_dict
from edgereid.compress.prune import (CRITERIA, make_importance, prune, prune_to_macs, prune_unstructured,
                                    recalibrate_bn, weight_sparsity, zlib_bytes)
from edgereid.compress.quantize import calibration_batches, embedding_cosine, nncf_int8_fixes, quantize, quantize_qat
from edgereid.compress.quantizer import EdgeInt8Quantizer
from edgereid.compress.int4 import EdgeMixedQuantizer, fake_quantize_int4, int4_codes, int4_scales
from edgereid.compress.mixed_precision import (FlashBudgetError, LayerCost, MixedPrecisionPlan, WeightMode,
                                              choose_int4_layers, compress_weights, int4_candidates,
                                              layer_sensitivity)

__all__ = ["compress", "load_model", "resize_to_state_dict", "CRITERIA", "make_importance", "prune",
           "prune_to_macs", "prune_unstructured", "weight_sparsity", "zlib_bytes", "recalibrate_bn", "quantize",
           "quantize_qat", "nncf_int8_fixes", "calibration_batches", "embedding_cosine", "EdgeInt8Quantizer",
           # 4-bit weights (edgereid.compress.int4, edgereid.compress.mixed_precision)
           "EdgeMixedQuantizer", "fake_quantize_int4", "int4_codes", "int4_scales", "FlashBudgetError", "LayerCost",
           "MixedPrecisionPlan", "WeightMode", "choose_int4_layers", "compress_weights", "int4_candidates",
           "layer_sensitivity"]
