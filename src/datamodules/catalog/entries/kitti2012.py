"""KITTI-2012 optical flow (official training layout)."""

from corrlab.datamodules.catalog.kitti_entry import entry

ENTRY = entry(2012)
