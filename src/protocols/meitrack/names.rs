//! Attribute names (ours: snake_case with units) and Meitrack event codes
//! that are alarms.

pub(super) const EVENT: &str = "event";
pub(super) const ALARM: &str = "alarm";
pub(super) const RESULT: &str = "result";
pub(super) const HDOP: &str = "hdop";
pub(super) const RSSI: &str = "rssi";
pub(super) const ODOMETER: &str = "odometer_m";
pub(super) const RUNTIME: &str = "runtime_s";
pub(super) const INPUT: &str = "input";
pub(super) const OUTPUT: &str = "output";
pub(super) const STATUS: &str = "status";
pub(super) const BATTERY: &str = "battery_v";
pub(super) const POWER: &str = "power_v";
pub(super) const BATTERY_LEVEL: &str = "battery_level_pct";
pub(super) const FUEL_LEVEL: &str = "fuel_level_pct";
pub(super) const NETWORK: &str = "network";
pub(super) const DRIVER: &str = "driver_unique_id";
pub(super) const EVENT_DATA: &str = "event_data";
pub(super) const INDEX: &str = "index";
pub(super) const CACHE_REMAINING: &str = "cache_remaining";
pub(super) const LOCK: &str = "lock";
pub(super) const THROTTLE: &str = "throttle_pct";
pub(super) const OBD_SPEED: &str = "obd_speed_kmh";
pub(super) const FUEL_USED: &str = "fuel_used_l";
pub(super) const RPM: &str = "rpm";
pub(super) const COOLANT_TEMP: &str = "coolant_temp_c";
pub(super) const FUEL_CONSUMPTION: &str = "fuel_consumption";
pub(super) const OBD_ODOMETER: &str = "obd_odometer_m";
pub(super) const ENGINE_HOURS: &str = "engine_hours_s";
pub(super) const IMAGE: &str = "image";
pub(super) const ALARM_TYPE: &str = "alarm_type";
pub(super) const TAG_NAME: &str = "tag_name";
pub(super) const TAG_BATTERY: &str = "tag_battery_pct";
pub(super) const TAG_TEMP: &str = "tag_temp_c";
pub(super) const TAG_HUMIDITY: &str = "tag_humidity_pct";
pub(super) const ADC: [&str; 3] = ["adc1", "adc2", "adc3"];
/// `temp0_c` … `temp7_c`: CCE temperature probes 0x2A–0x31.
pub(super) const PROBE_TEMPS: [&str; 8] = [
    "temp0_c", "temp1_c", "temp2_c", "temp3_c", "temp4_c", "temp5_c", "temp6_c", "temp7_c",
];
/// `battery_level_pct`, `battery2_level_pct`, `battery3_level_pct` (CCE 0xFEA8).
pub(super) const BATTERY_LEVELS: [&str; 3] =
    [BATTERY_LEVEL, "battery2_level_pct", "battery3_level_pct"];

/// The alarm an event code stands for, if it is one.
pub(super) fn alarm(event: u32) -> Option<&'static str> {
    Some(match event {
        1 => "sos",
        17 => "low_battery",
        18 => "low_power",
        19 => "overspeed",
        20 => "geofence_enter",
        21 => "geofence_exit",
        22 => "power_restored",
        23 => "power_cut",
        36 => "tow",
        44 => "jamming",
        78 => "accident",
        90 | 91 => "cornering",
        129 => "braking",
        130 => "acceleration",
        135 => "fatigue_driving",
        _ => return None,
    })
}

/// `temp<index>_c` for a text-message probe index.
pub(super) fn temp(index: u8) -> String {
    format!("temp{index}_c")
}
