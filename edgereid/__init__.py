"""edgereid: person Re-ID models onto microcontrollers and small NPUs."""
__version__ = "0.1.0"
