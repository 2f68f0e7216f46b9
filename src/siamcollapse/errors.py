"""The one exception type a user sees: bad input, named precisely, raised before work starts."""


class UserInputError(Exception):
    """A configuration key, path or file is wrong; the message names it and says what to do."""
