# mmrskd's compat layer must run before the test modules import mmrotate.
import mmrskd  # noqa: F401
