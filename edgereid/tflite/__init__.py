"""The TFLite file format, spoken in one place: read into the IR, write, metadata, reference runs.

The bottom of the package: it imports no pipeline stage.
"""
