class MMRSKDError(ValueError):
    """A user-facing error: one line naming the file, line, key or module path
    at fault, and the fix.

    ``tools/train.py`` and ``tools/test.py`` print it without a traceback. It
    derives from ``ValueError`` so mmengine's registry can re-raise it with the
    class name prepended.
    """
