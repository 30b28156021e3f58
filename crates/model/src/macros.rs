//! The `string_enum!` macro: closed vocabularies (kinds, levels, states) that parse from
//! and print to the exact strings stored in the databases and shown in the API.

/// Declares a `Copy` enum whose variants map one-to-one to stable lowercase strings.
///
/// Gives `ALL`, `as_str`, `Display`, `FromStr` (an unknown value is a
/// [`ModelError::UnknownValue`](crate::ModelError) naming what is allowed) and serde
/// that uses the same strings, so the database, the API and the rule files agree.
#[macro_export]
macro_rules! string_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        $vis enum $name { $($(#[$vm])* #[serde(rename = $s)] $var),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The stable string form used in storage and in the API.
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
            /// The comma-separated list of allowed strings, for error messages and schemas.
            pub fn allowed() -> String { [$($s),+].join(", ") }
        }
        impl $crate::schema::Vocabulary for $name {
            fn as_str(self) -> &'static str { $name::as_str(self) }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err($crate::ModelError::UnknownValue {
                        what: stringify!($name),
                        value: s.chars().take(64).collect(),
                        allowed: Self::allowed(),
                    }),
                }
            }
        }
    };
}
