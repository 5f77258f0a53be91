//! OpenCV's `cv2.resize(..., interpolation=INTER_LINEAR)` on uint8 RGB images, bit-exact.
