//! The vocabularies as PostgreSQL values (feature `postgres`): stored as text, bound and
//! read through their `as_str`/`FromStr`. They live beside the types because Rust lets only
//! the crate that owns a type implement another crate's traits for it.

use crate::{
    Burial, ChangeOp, DrainageKind, GasPressure, GridLevel, Layer, PipeKind, PipeStatus,
    QualityLevel, RiskLevel, RiskStatus, Role, SensorKind, SensorStatus,
};
use postgres_types::{FromSql, IsNull, ToSql, Type};

// Vocabularies are stored as text: bind and read them through their `as_str`/`FromStr`.
macro_rules! text_sql {
    ($($t:ty),+ $(,)?) => {$(
        impl ToSql for $t {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut bytes::BytesMut,
            ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }
            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }
            postgres_types::to_sql_checked!();
        }
        impl<'a> FromSql<'a> for $t {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(<&str as FromSql>::from_sql(ty, raw)?.parse::<$t>()?)
            }
            fn accepts(ty: &Type) -> bool {
                <&str as FromSql>::accepts(ty)
            }
        }
    )+};
}

text_sql!(
    PipeKind,
    DrainageKind,
    GasPressure,
    Burial,
    QualityLevel,
    PipeStatus,
    GridLevel,
    RiskLevel,
    RiskStatus,
    SensorKind,
    SensorStatus,
    Layer,
    ChangeOp,
    Role,
);
