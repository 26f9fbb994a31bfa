"""The embedded default raw corpus: a deterministic synthetic world of raw detection sources.

``corpus.generate_corpus`` writes, under one folder:

- ``sources/<source_id>/...``: raw sources in the six formats of ``docs/FORMATS.md`` (coco, voc,
  yolo, openimages, odvg, labelme) and a few folders of junk (catalog format ``auto``);
- ``catalog.parquet`` (``schemas.CATALOG_SCHEMA``): one row per source; ``uri`` is the absolute
  local folder (or the one ``.zip`` in it), ``content_hash`` is ``sha256:`` over the source's
  files (see ``corpus.content_hash``);
- ``planted.parquet`` (``schemas.PLANTED_SCHEMA``): the ground truth of every planted defect;
- ``_COMPLETE``: JSON of the parameters, written last. A folder without it is not a corpus.

Most images hold no pixels: such an image is ``synthetic://<source_id>/<name>?w=<W>&h=<H>``
(readers take the size from the URI; ``render.py`` draws the picture on demand). About 5% of
the drawn sources (and five forced ones, one per layout) are real-image sources
(``real_images``, ``layouts``): image files 64-200 px a side (JPEG, some PNG; the picture is
``render.render_image`` of the image's boxes) in the layouts people download: COCO's official
one, a Roboflow COCO export in a folder or a ``.zip``, Ultralytics YOLO (``data.yaml``), and
COCO with a gzip annotation file. They hold at most ``plan.REAL_MAX_IMAGES`` images, no
near-threshold case and no extreme-aspect box (too long for such images).

What is planted (codes are ``reasons``'; proportions echo the technical report):

- about 56% of sources fail on label meaning (``source_label_quality``): most of their labels
  are gibberish, private or vague, some have nothing else; every box with a bad label is one
  ``label_gibberish`` / ``label_private`` / ``label_vague`` row;
- about 12% fail on geometry: an oversized box in every image (``source_oversized_everywhere``,
  each such box also ``oversized_box``) or 60-80% of images without boxes
  (``source_missing_annotations``; never in Open Images sources);
- about 3% of sources are mirrors: they re-publish an earlier good source's images,
  boxes and labels under their own id, naming each image by the origin's URI with the query
  keys swapped (``?h=..&w=..``): cross-source duplicates the lake must keep once (planted
  ``duplicate_image``, one row per image with boxes);
- the rest are good: a few bad labels, a few box defects (``reasons.BOX_REASONS``, one per
  planted box) and under 10% unannotated images. About 3% of the good ones also carry a file
  defect (``parse_*`` codes); a few sources are junk (``parse_unknown_format`` and, with no
  box, ``source_too_few_boxes``);
- next to every threshold, cases just outside (planted with their code) and just inside
  (``near:<code>``: must be kept), each naming its threshold in ``planted.near`` (``near``):
  box cases in images of their own appended to good sources, and six whole sources next to
  the source rules;
- in real-image sources, on images whose boxes are otherwise clean (every box of the image
  planted): an annotation naming a file that is not there (``image_missing``), a ``.jpg`` no
  decoder reads (``image_undecodable``), an annotation stating twice the file's size
  (``image_size_mismatch``), and JPEGs stored rotated with EXIF orientation 6 or 8, annotated
  in the displayed or (COCO) the stored orientation (``exif_rotated``: kept, turned to the
  displayed one); and 30% of the good ones (every forced one but the first) re-publish
  pictures of an earlier real-image source, re-encoded or resized to 50-75% under their own
  names, boxes scaled alike (``duplicate_content``, one image-level row per copy).

Every clean box is clearly clean: each side >= 16 px and >= 3% of the image side (in fact
>= 20 px and >= 5%), area <= 60% (<= 49%), aspect <= 5 (<= 4.2), >= 3% (>= 4%) of the image
side from every border, and IoU < 0.5 with every other box of the same canonical label in the
image (the original of a planted duplicate, far or near the threshold, excepted). Near-threshold
negatives are planted rows, not clean boxes in this sense.

Determinism: each source draws from generators seeded by (seed, source index), so the bytes
depend on (scale, seed) only, never on ``workers`` (the image files, zips and gzip files also
on the Pillow and zlib that encode them).

One module per job, in the order a source is made:

- ``plan``: scales, source kinds and the plan of each source (``plan_source``);
- ``vocabulary``: the object vocabulary and how annotation tools spell its names;
- ``labels``: bad-label generators, a source's label table and the label of each box;
- ``geometry``: image sizes, clean boxes and close same-label pairs;
- ``defects``: the planted codes and how a clean box becomes a defect;
- ``near``: the cases next to each threshold, and where each format can express them;
- ``source``: one source's images, boxes and attributes before writing (``build_source``);
- ``text`` and one writer per format (``coco``, ``voc``, ``yolo``, ``openimages``, ``odvg``,
  ``labelme``), gathered in ``writers``;
- ``real_images``: what each file of a real-image source is, its pixels and the pictures it
  copies (``build_real_source``); ``layouts``: its files in its download layout;
- ``planted``: the planted rows of a written source;
- ``corpus``: chunks, the process pool, the catalog and the atomic publish
  (``generate_corpus``).
"""
