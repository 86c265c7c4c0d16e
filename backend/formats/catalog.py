"""What each format is for, for people choosing one: a label, a one-line description, what
shapes it holds, the export options it honours and what an import reads.

Plain data, so the GUI's dialogs and the CLI's help say the same thing. The descriptions must
match what the modules do (each module's docstring has the details).
"""

from __future__ import annotations

from dataclasses import dataclass

# Options every format honours (they act in load_dataset and export_project); "segmentation"
# only where the format can write a mask either way.
COMMON_OPTIONS = ("include_pending", "include_unlabeled", "split", "seed", "resize",
                  "copy_images")


@dataclass(frozen=True)
class FormatInfo:
    """``import_source``: what ``import`` reads — ``"file"`` (one file, e.g. a COCO JSON; its
    folder works too) or ``"folder"``; None when the format is export only. ``file_filter``:
    a file dialog filter for ``"file"`` sources."""

    label: str
    description: str
    holds: str
    segmentation: bool = False
    import_source: str | None = None
    import_hint: str = ""
    file_filter: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        return COMMON_OPTIONS + (("segmentation",) if self.segmentation else ())


CATALOG: dict[str, FormatInfo] = {
    "coco": FormatInfo(
        "COCO", "One JSON for detection and instance segmentation (Detectron2, MMDetection, "
        "pycocotools).", "Boxes, polygons and masks; points are left out (listed).",
        segmentation=True, import_source="file",
        import_hint="A COCO .json file (or a folder with annotations.json or annotations/).",
        file_filter="COCO annotations (*.json)"),
    "yolo": FormatInfo(
        "YOLO detect", "Ultralytics label files and data.yaml for object detection.",
        "Every shape as its bounding box; points are left out (listed).",
        import_source="folder", import_hint="The YOLO folder holding data.yaml and labels/."),
    "yolo-seg": FormatInfo(
        "YOLO segment", "Ultralytics label files and data.yaml for instance segmentation.",
        "Boxes, polygons and masks as one outline each; points are left out (listed).",
        import_source="folder", import_hint="The YOLO folder holding data.yaml and labels/."),
    "voc": FormatInfo(
        "Pascal VOC", "One XML per image, plus segmentation PNGs when there are masks.",
        "Boxes; polygons and masks as boxes plus painted PNGs; points are left out (listed).",
        import_source="folder",
        import_hint="The VOC folder holding Annotations/ (and SegmentationObject/)."),
    "labelme": FormatInfo(
        "labelme", "One JSON per image, next to the image; opens in labelme.",
        "Boxes, polygons, points and masks.", segmentation=True, import_source="folder",
        import_hint="A folder of labelme .json files (the images' folder works)."),
    "masks": FormatInfo(
        "Semantic masks", "Class-index PNGs in train/ and validation/ for pixel classifiers.",
        "Polygons and masks as pixels (255 = unlabeled); boxes and points are left out."),
    "cvat": FormatInfo(
        "CVAT", "CVAT for images 1.1 XML, to carry on in a CVAT task.",
        "Boxes, polygons, points and masks."),
    "labelstudio": FormatInfo(
        "Label Studio", "Label Studio tasks; model proposals become predictions.",
        "Boxes, polygons, points and masks."),
}
