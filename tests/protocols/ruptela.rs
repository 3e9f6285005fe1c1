//! ruptela: vectors and socket tests (to be written).
