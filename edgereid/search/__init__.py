"""Hardware-aware CM-NAS: `search(board, data, ...)` trains a weight-sharing supernet and
runs an evolutionary search under the board's latency, flash and RAM budgets."""
