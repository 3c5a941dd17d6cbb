"""big_vision-style `get_config(arg)` argument parsing: "key=value,flag,key2=value2" -> ConfigDict.

Also `ConfigError`, the one-line error of a bad config (argument, field value, job validation), and `require`.
"""
import ml_collections

from data_pipelines import errors


class ConfigError(errors.InputError):
  """A bad config value (argument, field, environment variable, workdir): `<what>: expected <x>, got <y>`, printed
  by `lrm_jax.main` as one line."""


def require(ok: bool, what: str, expected: str, got) -> None:
  """Raises ConfigError(what, expected, got) unless `ok`: the one-liner job `validate` functions are made of.
  `got` is shown as given (pass repr(x) to quote a string)."""
  if not ok:
    raise ConfigError(what, expected, got)


def _convert(key: str, value: str, default):
  if isinstance(default, bool):
    if value.lower() in ("", "true", "1", "yes"):
      return True
    if value.lower() in ("false", "0", "no"):
      return False
    raise ConfigError(f"config arg {key}", "a boolean (true/false)", repr(value))
  if default is None:
    return value
  try:
    return type(default)(value)
  except ValueError:  # int("abc") names neither the argument nor the type it wanted
    raise ConfigError(f"config arg {key}", f"{'an integer' if isinstance(default, int) else 'a number'}",
                      repr(value)) from None


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses `arg` against `defaults`; a bare word sets a boolean to True. Unknown keys are an error."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ConfigError(f"unknown config arg {key!r}", f"one of {sorted(defaults)}")
    out[key] = _convert(key, value, defaults[key])
  return out


def load_file(spec: str):
  """`get_config(arg)` of a config given as "path/to/config.py[:arg]", the `--config` syntax of `lrm_jax.main`
  (config files are loaded by path, as config_flags does, not imported as a package)."""
  import importlib.util
  import os
  path, _, arg = spec.partition(":")
  path = os.path.normpath(os.path.abspath(path))
  if not os.path.exists(path):
    raise ConfigError("config file", "an existing configs/*.py file", repr(path))
  module_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def load_sibling(this_file: str, name: str, arg: str | None = None):
  """`get_config(arg)` of another config file in the same folder as `this_file`, e.g.
  load_sibling(__file__, "../reward_data.py", "seed=1")."""
  import os
  path = os.path.join(os.path.dirname(os.path.abspath(this_file)), name)
  return load_file(path if arg is None else f"{path}:{arg}")
