"""The only layer that touches the cffi extension: the binding, the codec
between Python values and the C structs, and the errno-to-exception mapper."""
