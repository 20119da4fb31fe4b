"""Geometry: homographies, epipolar distances, depth reprojection, pose and homography estimation."""
