//! tk103: vectors and socket tests (to be written).
