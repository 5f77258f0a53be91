//! The `torchvision` family (Faster R-CNN, RetinaNet, SSD exported with `torch.onnx.export`): one
//! `[3, H, W]` image in, `boxes` / `labels` / `scores` out; the graph resizes, normalises and runs NMS.
