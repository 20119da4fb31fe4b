"""PF-Pascal: the expected folder layout and where to get it (text only, so `corrlab-data info` loads fast)."""

LAYOUT = """\
<root>/
  PF-dataset-PASCAL/JPEGImages/<image>.jpg                  (1,351 images, 20 classes)
  PF-dataset-PASCAL/Annotations/<class>/<image>.mat         (kps N x 2, NaN = invisible; needed by a CSV without
                                                            XA..YB columns: the training CSV and NCNet's val CSV)
  test_pairs_pf_pascal.csv  (299 pairs)  val_pairs_pf_pascal.csv  (308 pairs)
      source_image,target_image,class,XA,YA,XB,YB   image paths relative to <root>, class 1-based,
      XA..YB ';'-separated coordinates of corresponding keypoints
  train_pairs_pf_pascal.csv (2,940 pairs): source_image,target_image,class,flip
The CSVs may also sit in PF-dataset-PASCAL/ (GeoAware-SC) or be image_pairs/<split>_pairs.csv (NCNet)."""
HOW_TO_GET = """\
  wget https://www.di.ens.fr/willow/research/proposalflow/dataset/PF-dataset-PASCAL.zip && unzip PF-dataset-PASCAL.zip
  wget https://www.di.ens.fr/willow/research/cnngeometric/other_resources/test_pairs_pf_pascal.csv
  wget https://www.di.ens.fr/willow/research/cnngeometric/other_resources/val_pairs_pf_pascal.csv
The training CSV ships with NCNet (github.com/ignacio-rocco/ncnet, datasets/pf-pascal/image_pairs/train_pairs.csv)
and weakalign; sizes not verified here (the image zip is a few hundred MB)."""
