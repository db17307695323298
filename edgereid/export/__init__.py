"""Export stage: TFLite (float or full-integer int8, NHWC) and ONNX, with edgereid metadata."""
from edgereid.export.exporters import check_int8_tflite, export_onnx, export_tflite, read_export_metadata
from edgereid.export.prepare import ChannelsLast, fold_bn_neck, prepare_for_export
from edgereid.tflite.embedder import TFLiteEmbedder, run_tflite

__all__ = ["export_tflite", "export_onnx", "read_export_metadata", "check_int8_tflite",
           "prepare_for_export", "fold_bn_neck", "ChannelsLast", "run_tflite", "TFLiteEmbedder"]
