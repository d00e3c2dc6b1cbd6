"""Label interchange formats: read a dataset's masks into class-index arrays and write a
project's labels back out (index PNG, Pascal VOC, COCO, Cityscapes, labelme, CVAT, YOLO).

Each format is one module exposing ``FORMAT`` (a :class:`~workbench.formats.base.FormatSpec`);
:mod:`workbench.formats.registry` lists them and detects which one a source is. Plain
numpy/opencv/pycocotools: no Qt, no project; the workflow in
``workbench.workflows.interchange`` maps a format's classes onto a project's.
"""
