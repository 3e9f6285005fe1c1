//! Geodesy the engine needs: validated bounding boxes, great-circle
//! distance, and the lon/lat envelopes that contain a circle.

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A lon/lat box. `min_lon > max_lon` is not allowed; a box across the
/// antimeridian is two boxes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

/// Why a query's geometry is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("latitude {0} is outside -90..=90")]
    Lat(f64),
    #[error("longitude {0} is outside -180..=180")]
    Lon(f64),
    #[error("box minimum {0} is greater than maximum {1}")]
    Inverted(f64, f64),
    #[error("radius {0} m must be positive and finite")]
    Radius(f64),
}

pub(crate) fn check_lat(v: f64) -> Result<f64, GeoError> {
    if v.is_finite() && (-90.0..=90.0).contains(&v) {
        Ok(v)
    } else {
        Err(GeoError::Lat(v))
    }
}

pub(crate) fn check_lon(v: f64) -> Result<f64, GeoError> {
    if v.is_finite() && (-180.0..=180.0).contains(&v) {
        Ok(v)
    } else {
        Err(GeoError::Lon(v))
    }
}

impl BBox {
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<Self, GeoError> {
        let (min_lon, max_lon) = (check_lon(min_lon)?, check_lon(max_lon)?);
        let (min_lat, max_lat) = (check_lat(min_lat)?, check_lat(max_lat)?);
        if min_lon > max_lon {
            return Err(GeoError::Inverted(min_lon, max_lon));
        }
        if min_lat > max_lat {
            return Err(GeoError::Inverted(min_lat, max_lat));
        }
        Ok(Self {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }
}

/// Great-circle distance in metres (haversine).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Lon/lat boxes (one, or two across the antimeridian) that contain every
/// point within `radius_m` of the centre. Conservative, never too small.
pub(crate) fn circle_envelopes(lat: f64, lon: f64, radius_m: f64) -> Vec<BBox> {
    let ang = radius_m / EARTH_RADIUS_M; // radians
    let dlat = ang.to_degrees();
    let min_lat = (lat - dlat).max(-90.0);
    let max_lat = (lat + dlat).min(90.0);
    // If the circle reaches a pole, every longitude is in range.
    if lat + dlat >= 90.0 || lat - dlat <= -90.0 || ang >= std::f64::consts::FRAC_PI_2 {
        return vec![BBox {
            min_lon: -180.0,
            min_lat,
            max_lon: 180.0,
            max_lat,
        }];
    }
    let s = ang.sin() / lat.to_radians().cos();
    if s >= 1.0 {
        return vec![BBox {
            min_lon: -180.0,
            min_lat,
            max_lon: 180.0,
            max_lat,
        }];
    }
    let dlon = s.asin().to_degrees();
    let (lo, hi) = (lon - dlon, lon + dlon);
    let mk = |a: f64, b: f64| BBox {
        min_lon: a,
        min_lat,
        max_lon: b,
        max_lat,
    };
    match (lo < -180.0, hi > 180.0) {
        (true, _) => vec![mk(-180.0, hi), mk(lo + 360.0, 180.0)],
        (_, true) => vec![mk(lo, 180.0), mk(-180.0, hi - 360.0)],
        _ => vec![mk(lo, hi)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distance() {
        // Paris – London ≈ 343.5 km.
        let d = haversine_m(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343_500.0).abs() < 1_000.0, "{d}");
        assert_eq!(haversine_m(10.0, 10.0, 10.0, 10.0), 0.0);
    }

    #[test]
    fn bbox_validation() {
        assert!(BBox::new(-10.0, -5.0, 10.0, 5.0).is_ok());
        assert_eq!(
            BBox::new(10.0, 0.0, -10.0, 1.0),
            Err(GeoError::Inverted(10.0, -10.0))
        );
        assert_eq!(BBox::new(0.0, -91.0, 1.0, 1.0), Err(GeoError::Lat(-91.0)));
        assert_eq!(
            BBox::new(f64::NAN, 0.0, 1.0, 1.0)
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "longitude NaN is outside -180..=180"
        );
    }

    #[test]
    fn envelopes_split_at_the_antimeridian() {
        let e = circle_envelopes(0.0, 179.9, 50_000.0);
        assert_eq!(e.len(), 2);
        assert!(e.iter().any(|b| b.min_lon < -179.0 && b.max_lon > -179.9));
    }
}
