"""Open X-Embodiment RLDS datasets: a per-dataset table of where the primary image and the instruction live.

Keys are relative to `steps/`. Google-style sets keep the instruction in observation/natural_language_instruction;
"converted" sets in language_instruction; language_table stores UTF-8 codes in an int32[512] array.
"""
import dataclasses
from typing import Optional

from data_pipelines import tfds_io
from data_pipelines.errors import DataFormatError
from data_pipelines.rlds import RldsReader


@dataclasses.dataclass(frozen=True)
class OxeSpec:
  image_key: str
  instruction_key: Optional[str]  # None: the dataset has no usable instruction; pass instruction=...
  instruction_encoding: str = "text"
  wrist_image_key: Optional[str] = None


_NLI = "observation/natural_language_instruction"
OXE_DATASETS: dict[str, OxeSpec] = {
    "fractal20220817_data": OxeSpec("observation/image", _NLI),
    "bridge": OxeSpec("observation/image", _NLI),
    "bridge_dataset": OxeSpec("observation/image_0", "language_instruction"),  # Octo "bridge_orig"
    "taco_play": OxeSpec("observation/rgb_static", _NLI, wrist_image_key="observation/rgb_gripper"),
    "jaco_play": OxeSpec("observation/image", _NLI, wrist_image_key="observation/image_wrist"),
    "berkeley_autolab_ur5": OxeSpec("observation/image", _NLI, wrist_image_key="observation/hand_image"),
    "language_table": OxeSpec("observation/rgb", "observation/instruction", instruction_encoding="int_bytes"),
    "droid": OxeSpec("observation/exterior_image_1_left", "language_instruction",
                     wrist_image_key="observation/wrist_image_left"),
    "toto": OxeSpec("observation/image", None),
    "kuka": OxeSpec("observation/image", None),
    "austin_buds_dataset_converted_externally_to_rlds": OxeSpec(
        "observation/image", "language_instruction", wrist_image_key="observation/wrist_image"),
    "austin_sailor_dataset_converted_externally_to_rlds": OxeSpec(
        "observation/image", "language_instruction", wrist_image_key="observation/wrist_image"),
    "austin_sirius_dataset_converted_externally_to_rlds": OxeSpec(
        "observation/image", "language_instruction", wrist_image_key="observation/wrist_image"),
    # Not Open-X: our simulated second-camera source, written in the "converted" layout (data_pipelines/export.py).
    "lrm_bench_oxe": OxeSpec("observation/image", "language_instruction"),
}


class OxeReader(RldsReader):
  """Reads one OXE dataset folder (`<name>/<version>/`); the dataset is recognised by its TFDS name.

  Unknown datasets raise a one-line error naming the step keys found; pass `spec=OxeSpec(...)` to read them.
  Success is unknown for OXE (None): most sets are teleoperated demonstrations, and labels decide how to treat it.
  Episodes with an empty instruction (many in Bridge, some in DROID) are skipped and counted
  (`no_instruction_count`, `no_language=` in the mixture summary); `no_instruction="raise"` stops on them instead.
  """
  no_instruction_default = "skip"

  def __init__(self, path, *, spec: Optional[OxeSpec] = None, instruction: Optional[str] = None,
               split: str = "train", **kw):
    builder = tfds_io.open_builder(path)
    name = builder.info.name
    if spec is None:
      if name not in OXE_DATASETS:
        raise DataFormatError(path, "dataset name", f"one of the OXE datasets {sorted(OXE_DATASETS)} "
                              "(or pass spec=OxeSpec(image_key, instruction_key))",
                              f"'{name}' with step keys {tfds_io.step_keys(builder)}")
      spec = OXE_DATASETS[name]
    super().__init__(path, image_key=spec.image_key, instruction_key=spec.instruction_key,
                     instruction_encoding=spec.instruction_encoding, instruction=instruction,
                     source=f"oxe:{name}", split=split, **kw)
    self.dataset_name = name
