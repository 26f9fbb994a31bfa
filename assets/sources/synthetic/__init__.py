"""The embedded default raw corpus: a deterministic synthetic world of raw detection sources.

``corpus.generate_corpus`` writes, under one folder:

- ``sources/<source_id>/...``: raw sources in the six formats of ``docs/FORMATS.md`` (coco, voc,
  yolo, openimages, odvg, labelme) and a few folders of junk (catalog format ``auto``);
- ``catalog.parquet`` (``schemas.CATALOG_SCHEMA``): one row per source; ``uri`` is the absolute
  local folder, ``content_hash`` is ``sha256:`` over the source's files (see
  ``corpus.content_hash``);
- ``planted.parquet`` (``schemas.PLANTED_SCHEMA``): the ground truth of every planted defect;
- ``_COMPLETE``: JSON of the parameters, written last. A folder without it is not a corpus.

Images hold no pixels: every image is ``synthetic://<source_id>/<name>?w=<W>&h=<H>`` (readers
take the size from the URI; ``render.py`` draws the picture on demand).

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
  the source rules.

Every clean box is clearly clean: each side >= 16 px and >= 3% of the image side (in fact
>= 20 px and >= 5%), area <= 60% (<= 49%), aspect <= 5 (<= 4.2), >= 3% (>= 4%) of the image
side from every border, and IoU < 0.5 with every other box of the same canonical label in the
image (the original of a planted duplicate, far or near the threshold, excepted). Near-threshold
negatives are planted rows, not clean boxes in this sense.

Determinism: each source draws from generators seeded by (seed, source index), so the bytes
depend on (scale, seed) only, never on ``workers``.

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
- ``planted``: the planted rows of a written source;
- ``corpus``: chunks, the process pool, the catalog and the atomic publish
  (``generate_corpus``).
"""
