"""The `lambda-trl` commands, one module each with its parsers and its `run(argv)`: `train` and `eval`."""


class OneLineErrors:
    """
    Mixin for an `argparse.ArgumentParser`: a command-line mistake raises a ValueError, which `lambda_trl.cli` prints
    as one line (exit code 2), in place of argparse's usage block (230 lines for `lambda-trl train`) and exit.
    """

    def error(self, message):
        raise ValueError(f"{self.prog}: {message} (`{self.prog} --help` lists the options).")


class TrainingFailed(Exception):
    """
    An error raised once training had started: not a mistake in the input that one line can explain, so
    `lambda_trl.cli` prints the traceback (written to `log_file` too) instead of one line.
    """

    def __init__(self, error: BaseException, log_file: str | None):
        super().__init__(f"{type(error).__name__}: {error}")
        self.log_file = log_file
