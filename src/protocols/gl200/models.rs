//! Device model from the protocol version field (`<ver>` = model code +
//! firmware): the first two hex digits, or the first six when the version
//! has ten. The per-port `model` setting overrides it (see `protocols/gl200.md`).

const MODELS: &[(&str, &str)] = &[
    ("02", "GL200"),
    ("04", "GV200"),
    ("06", "GV300"),
    ("08", "GMT100"),
    ("09", "GV50P"),
    ("0F", "GV55"),
    ("10", "GV55 LITE"),
    ("11", "GL500"),
    ("1A", "GL300"),
    ("1F", "GV500"),
    ("21", "GL200"),
    ("25", "GV300"),
    ("27", "GV300W"),
    ("28", "GL300VC"),
    ("2C", "GL300W"),
    ("2D", "GV500VC"),
    ("2F", "GV55"),
    ("4F", "GV56"),
    ("30", "GL300"),
    ("31", "GV65"),
    ("35", "GV200"),
    ("36", "GV500"),
    ("3F", "GMT100"),
    ("40", "GL500"),
    ("41", "GV75W"),
    ("42", "GT501"),
    ("44", "GL530"),
    ("45", "GB100"),
    ("50", "GV55W"),
    ("52", "GL50"),
    ("55", "GL50B"),
    ("5E", "GV500MAP"),
    ("6E", "GV310LAU"),
    ("74", "GV350CEU"),
    ("BD", "CV200"),
    ("C2", "GV600M"),
    ("C3", "GL320M"),
    ("DC", "GV600MG"),
    ("DE", "GL500M"),
    ("DF", "CV100LG"),
    ("F1", "GV350M"),
    ("F8", "GV800W"),
    ("FC", "GV600W"),
    ("802004", "GV58LAU"),
    ("802005", "GV355CEU"),
    ("80201E", "GV30CEU"),
];

/// The model for `version`, or `configured` (upper-cased) when the port sets one.
pub(super) fn model(version: &str, configured: Option<&str>) -> String {
    if let Some(m) = configured {
        return m.to_ascii_uppercase();
    }
    let prefix = if version.len() > 6 {
        version.get(..6)
    } else {
        version.get(..2)
    };
    prefix
        .and_then(|p| {
            MODELS
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(p))
                .map(|(_, m)| (*m).to_string())
        })
        .unwrap_or_default()
}

/// Whether `model` is GV35xCEU.
pub(super) fn is_gv35x_ceu(model: &str) -> bool {
    model.len() == 8 && model.starts_with("GV35") && model.ends_with("CEU")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_picks_the_model() {
        assert_eq!(model("F10415", None), "GV350M");
        assert_eq!(model("8020050704", None), "GV355CEU");
        assert_eq!(model("6e0202", None), "GV310LAU");
        assert_eq!(model("ZZ0000", None), "");
        assert_eq!(model("F10415", Some("gl300")), "GL300");
        assert!(is_gv35x_ceu("GV355CEU"));
        assert!(!is_gv35x_ceu("GV350M"));
    }
}
