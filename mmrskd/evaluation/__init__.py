from mmrskd.evaluation.functional import *  # noqa: F401,F403
from mmrskd.evaluation.metrics import *  # noqa: F401,F403
