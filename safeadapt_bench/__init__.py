"""safeadapt-bench: safe, parameter-efficient adaptation of vision-language backbones to manipulation.

Importing the package registers the ``SafeAdapt/*`` Gymnasium environments. It does not import
robosuite, mujoco or torch; those load when an environment is made.
"""

from safeadapt_bench.envs.registration import register_envs as _register_envs

__version__ = "0.1.0"

_register_envs()

__all__ = ["__version__"]
