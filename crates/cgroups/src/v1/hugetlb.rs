//! v1 hugetlb: hugetlb.<size>.limit_in_bytes.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use super::Error;
use crate::fs;

pub(super) fn set(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), Error> {
    for l in limits {
        let file = dir.join(format!("hugetlb.{}.limit_in_bytes", l.page_size()));
        fs::write(&file, &l.limit().to_string())?;
    }
    Ok(())
}
