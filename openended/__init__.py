"""openended: a distributed simulation service for curriculum and open-ended RL.

Layers (imports only point down): cli/dashboard -> runtime -> components ->
teachers, moi, envs, metrics -> tasks. See docs/design.md.
"""

from openended.tasks import Box, Discrete, Outcome, Task, TaskSpace, TextSpace

__version__ = "0.1.0"
__all__ = ["Box", "Discrete", "TextSpace", "TaskSpace", "Task", "Outcome", "__version__"]
