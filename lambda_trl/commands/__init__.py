"""The `lambda-trl` commands, one module each with its parsers and its `run(argv)`: `train` and `eval`."""
