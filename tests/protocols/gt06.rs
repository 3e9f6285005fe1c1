//! gt06: vectors and socket tests (to be written).
