//! Every protocol trackgate speaks, one folder each. A protocol owns its
//! bytes (framing, parsing, reply bytes, field mapping) and nothing else.

pub mod gl200;
pub mod gt06;
pub mod h02;
pub mod jt808;
pub mod meitrack;
pub mod osmand;
pub mod ruptela;
pub mod teltonika;
pub mod tk103;
pub mod wialon;
