"""Export stage: TFLite (float or full-integer int8, NHWC), the Larq Compute Engine format for
binary BiRe-ID networks, and ONNX, with edgereid metadata. INT4 filters: `edgereid.export.int4`
(imported on use: it needs the quantized_decomposed ops the compress stage registers)."""
from edgereid.export.exporters import (check_int8_tflite, export_onnx, export_tflite, read_export_metadata,
                                       select_modality)
from edgereid.export.lce import export_lce, export_lce_checkpoint
from edgereid.export.prepare import ChannelsLast, fold_bn_neck, prepare_for_export
from edgereid.tflite.embedder import TFLiteEmbedder, run_tflite

__all__ = ["export_tflite", "export_onnx", "read_export_metadata", "check_int8_tflite",
           "prepare_for_export", "fold_bn_neck", "ChannelsLast", "run_tflite", "TFLiteEmbedder", "export_lce",
           "export_lce_checkpoint", "select_modality"]
