"""A model directory's processor, built image-only where its video part would need torchvision.

fedvlm installs no torchvision. In transformers 5.23 every video processor requires it, so `AutoProcessor`
cannot build the processors of Qwen2/2.5/3-VL, SmolVLM, LLaVA-OneVision or InternVL (which hold one), and
`PixtralProcessor` (Mistral 3) imports a helper from the torchvision image processor's module. Those are
built here from the same family's processor class with the video part left out: the image processor
(AutoImageProcessor picks the PIL backend), the tokenizer and the chat template load as saved.
"""

from __future__ import annotations

import importlib
import json
import sys
from functools import cache
from pathlib import Path

from transformers import AutoProcessor, ProcessorMixin
from transformers.models.auto.processing_auto import processor_class_from_name
from transformers.utils import is_torchvision_available

# Files that may name the processor class, in the order AutoProcessor reads them.
_CLASS_FILES = ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json")
# A processor module whose only torchvision need is one helper the PIL image processor module also defines:
# class name -> (processor module, torchvision image-processing module, PIL image-processing module).
_TORCHVISION_HELPER_MODULES = {
    "PixtralProcessor": (
        "transformers.models.pixtral.processing_pixtral",
        "transformers.models.pixtral.image_processing_pixtral",
        "transformers.models.pixtral.image_processing_pil_pixtral",
    ),
}


def processor_class_name(model_dir: Path) -> str | None:
    """The processor class a saved model directory names, if any."""
    for name in _CLASS_FILES:
        file = model_dir / name
        if file.is_file():
            found = json.loads(file.read_text(encoding="utf-8")).get("processor_class")
            if found:
                return found
    return None


def _import_with_pil_helper(class_name: str) -> type[ProcessorMixin]:
    """Import a processor class whose module reaches into a torchvision module only for a helper of the PIL one."""
    module_name, torchvision_module, pil_module = _TORCHVISION_HELPER_MODULES[class_name]
    if module_name not in sys.modules:
        sys.modules[torchvision_module] = importlib.import_module(pil_module)
        try:
            importlib.import_module(module_name)
        finally:
            del sys.modules[torchvision_module]
    return getattr(sys.modules[module_name], class_name)


def _video_attributes(cls: type[ProcessorMixin]) -> list[str]:
    return [name for name in cls.get_attributes() if "video" in name]


@cache
def image_only_class(class_name: str) -> type[ProcessorMixin]:
    """The named processor class, importable without torchvision and without its video sub-processor.

    The subclass keeps the family's name, so what it saves names the family's own class. Build it with
    `video_processor=None` (SmolVLM's processor requires the argument).
    """
    if class_name in _TORCHVISION_HELPER_MODULES:
        cls = _import_with_pil_helper(class_name)
    else:
        cls = processor_class_from_name(class_name)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, ProcessorMixin):
        raise ImportError(f"processor class {class_name} cannot be built without torchvision")
    kept = [name for name in cls.get_attributes() if name not in _video_attributes(cls)]
    members = {
        "__module__": cls.__module__,
        "get_attributes": classmethod(lambda _: kept),
        # A family's own apply_chat_template (SmolVLM's) only adds video sampling defaults read from the
        # video processor; the template itself renders the same through ProcessorMixin's.
        "apply_chat_template": ProcessorMixin.apply_chat_template,
    }
    return type(cls.__name__, (cls,), members)


def _needs_image_only(class_name: str) -> bool:
    """Whether AutoProcessor would need torchvision for this processor class (and torchvision is absent)."""
    if is_torchvision_available():
        return False
    if class_name in _TORCHVISION_HELPER_MODULES:
        return True
    cls = processor_class_from_name(class_name)
    return isinstance(cls, type) and issubclass(cls, ProcessorMixin) and bool(_video_attributes(cls))


def load_processor(model_dir: Path):
    """The processor saved in a local model directory (never the hub); image-only where video needs torchvision."""
    class_name = processor_class_name(model_dir)
    if class_name is not None and _needs_image_only(class_name):
        cls = image_only_class(class_name)
        no_video = {name: None for name in _video_attributes(cls.__mro__[1])}
        return cls.from_pretrained(model_dir, local_files_only=True, **no_video)
    return AutoProcessor.from_pretrained(model_dir, local_files_only=True)
