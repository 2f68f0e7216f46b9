"""The exceptions a user sees as a message and an exit code instead of a traceback."""

import signal


class UserInputError(Exception):
    """A configuration key, path or file is wrong; the message names it and says what to do.

    Raised before work starts; the command exits with 2.
    """


class TrainingInterrupted(Exception):
    """Training stopped on SIGTERM after saving its state; rerunning the command resumes it."""

    exit_code = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


class TrainingDiverged(Exception):
    """The loss became non-finite: training stopped at once, with no final checkpoint written (the
    last complete epoch's resumable state stays). The message names the run, epoch, step and lr."""

    exit_code = 3
