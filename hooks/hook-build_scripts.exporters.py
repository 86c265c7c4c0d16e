"""PyInstaller hook for the export code, bundled only in the torch variant (``models convert``).

What pyinstaller-hooks-contrib's torch and transformers hooks leave out for our use:
transformers loads model classes lazily by name (``transformers.OwlViTForObjectDetection`` is
resolved from a string table), so the model packages our exporters use are collected here;
the exporters themselves are imported by name from ``backend.cli.models``. The contrib
transformers hook already copies the metadata of the dependencies it checks at import; the
packages below are listed again because ``importlib.metadata.version()`` is called on them
directly (transformers' version checks, huggingface_hub's user agent, torch.onnx).
"""

from PyInstaller.utils.hooks import collect_submodules, copy_metadata

_MODELS = ("clip", "owlvit", "owlv2", "sam", "sam2")

hiddenimports = collect_submodules("build_scripts.exporters")
for _m in _MODELS:
    hiddenimports += collect_submodules(f"transformers.models.{_m}")
hiddenimports += ["onnxruntime.quantization"]

datas = []
for _dist in ("torch", "numpy", "transformers", "tokenizers", "safetensors", "huggingface_hub",
              "onnx", "onnxruntime"):
    datas += copy_metadata(_dist)
