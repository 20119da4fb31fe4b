"""SPair-71k: the expected folder layout and where to get it (text only, so `corrlab-data info` loads fast)."""

LAYOUT = """\
<root>/                                   (SPair-71k: 18 categories, 1,800 images, 70,958 pairs)
  JPEGImages/<category>/<image>.jpg
  ImageAnnotation/<category>/<image>.json          (kps: {"0": [x, y] or null, ...}, bndbox, ...)
  PairAnnotation/{trn,val,test}/<id>-<src>-<trg>:<category>.json
      (src_kps, trg_kps, kps_ids, src_bndbox, trg_bndbox [x1, y1, x2, y2], src_imsize, trg_imsize [W, H, 3],
       category, viewpoint_variation, scale_variation, truncation, occlusion, mirror)
  Layout/large/{trn,val,test}.txt                  (one pair name per line: 53,340 / 5,384 / 12,234)
  Layout/small/{trn,val,test}.txt"""
HOW_TO_GET = """\
Download SPair-71k.tar.gz (the official release, a few hundred MB; size not verified here) from
  http://cvlab.postech.ac.kr/research/SPair-71k/data/SPair-71k.tar.gz
and extract it: tar xzf SPair-71k.tar.gz   (creates SPair-71k/)"""
