//! The container's architecture, as far as seccomp profiles care.

use std::fmt;
use std::str::FromStr;

use oci_spec::runtime::Arch as OciArch;

use crate::Error;

/// A CPU architecture that hull resolves seccomp profiles for.
///
/// A profile resolved for an architecture also covers its compat sub-architectures, as Docker's
/// `archMap` does (x86_64 filters x86 and x32 syscalls too, aarch64 filters arm, s390x filters
/// s390), so that a 32-bit binary in the container meets the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arch {
    X86_64,
    X86,
    Aarch64,
    Arm,
    Ppc64le,
    S390x,
    Riscv64,
}

impl Arch {
    /// All architectures, for tests and for listing.
    pub const ALL: [Arch; 7] = [
        Arch::X86_64,
        Arch::X86,
        Arch::Aarch64,
        Arch::Arm,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Riscv64,
    ];

    /// The architecture this crate was compiled for.
    pub const fn native() -> Self {
        #[cfg(target_arch = "x86_64")]
        return Arch::X86_64;
        #[cfg(target_arch = "x86")]
        return Arch::X86;
        #[cfg(target_arch = "aarch64")]
        return Arch::Aarch64;
        #[cfg(target_arch = "arm")]
        return Arch::Arm;
        #[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
        return Arch::Ppc64le;
        #[cfg(target_arch = "s390x")]
        return Arch::S390x;
        #[cfg(target_arch = "riscv64")]
        return Arch::Riscv64;
        #[cfg(not(any(
            target_arch = "x86_64",
            target_arch = "x86",
            target_arch = "aarch64",
            target_arch = "arm",
            all(target_arch = "powerpc64", target_endian = "little"),
            target_arch = "s390x",
            target_arch = "riscv64"
        )))]
        compile_error!("hull-seccomp does not know this target architecture");
    }

    /// The name Go (and so Docker's `includes.arches` / `excludes.arches`) uses.
    pub const fn go_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::X86 => "386",
            Arch::Aarch64 => "arm64",
            Arch::Arm => "arm",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The seccomp architecture matched against `archMap[].architecture`.
    pub const fn seccomp_arch(self) -> OciArch {
        match self {
            Arch::X86_64 => OciArch::ScmpArchX86_64,
            Arch::X86 => OciArch::ScmpArchX86,
            Arch::Aarch64 => OciArch::ScmpArchAarch64,
            Arch::Arm => OciArch::ScmpArchArm,
            Arch::Ppc64le => OciArch::ScmpArchPpc64le,
            Arch::S390x => OciArch::ScmpArchS390x,
            Arch::Riscv64 => OciArch::ScmpArchRiscv64,
        }
    }

    /// The name `uname -m` prints.
    pub const fn uname_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "i686",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "armv7l",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uname_name())
    }
}

/// Accepts Go names (`amd64`), `uname -m` names (`x86_64`, `i686`) and Docker platform names.
impl FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "amd64" | "x86_64" | "x86-64" => Arch::X86_64,
            "386" | "i386" | "i486" | "i586" | "i686" | "x86" => Arch::X86,
            "arm64" | "aarch64" => Arch::Aarch64,
            "arm" | "armhf" | "armel" | "armv6l" | "armv7l" | "armv8l" => Arch::Arm,
            "ppc64le" | "ppc64el" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "riscv64" => Arch::Riscv64,
            _ => {
                return Err(Error::UnknownArch {
                    field: "architecture".to_owned(),
                    value: s.to_owned(),
                })
            }
        })
    }
}
