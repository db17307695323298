"""Hardware-in-the-loop: run a model's firmware on a board (or QEMU) over a UART,
compare every output byte with LiteRT's reference kernels, count instructions."""
from edgereid.hil.image import build_hil_image, compile_image
from edgereid.hil.runner import HilResult, Mismatch, Reference, run_hil, run_image
from edgereid.hil.transports import HilClient, HostTransport, QemuTransport, SerialTransport

__all__ = ["run_hil", "run_image", "HilResult", "Mismatch", "Reference", "HilClient",
           "QemuTransport", "HostTransport", "SerialTransport", "build_hil_image", "compile_image"]
