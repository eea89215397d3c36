//! The records of a zip archive whose entries are stored (not compressed), as `torch.save` writes them.
//!
//! Layout read (PKWARE APPNOTE 4.3): at the end, the End Of Central Directory record (signature `PK\x05\x06`,
//! 22 bytes + a comment) and, in front of it when present (torch always writes one), the zip64 locator
//! (`PK\x06\x07`) pointing at the zip64 EOCD (`PK\x06\x06`), whose 64-bit counts and offsets win. The central
//! directory lists every record: its name, method, CRC-32, sizes and the offset of its local header (`PK\x03\x04`,
//! 30 bytes + name + extra), after which the bytes follow. Sizes or offsets of 0xFFFFFFFF are in the zip64 extra
//! field (id 0x0001). Everything is bounds-checked; a record is checked against its CRC-32 when it is read.
//!
//! Written here rather than taken from the `zip` crate: torch needs none of compression, encryption or writing,
//! and the crate (9.8) refused a valid 88 MB torch file ("Invalid Central Directory header").

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

/// One record of the central directory.
struct Record {
    method: u16,
    crc: u32,
    size: u64,
    local_offset: u64,
}

/// A parsed archive: record names and where their bytes are.
pub struct StoredZip<'a> {
    bytes: &'a [u8],
    records: HashMap<String, Record>,
}

/// Little-endian reads that fail instead of panicking past the end.
fn le(b: &[u8], at: u64, n: usize) -> Result<u64> {
    let at = usize::try_from(at).map_err(|_| anyhow!("offset {at} is past the end"))?;
    let s = at.checked_add(n).and_then(|e| b.get(at..e)).ok_or_else(|| anyhow!("a field at byte {at} is past the end of the file"))?;
    Ok(s.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
}

impl<'a> StoredZip<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<StoredZip<'a>> {
        let n = bytes.len();
        // The EOCD is the last 22 bytes plus a comment of at most 65,535 bytes: search backwards.
        let lowest = n.saturating_sub(22 + 65_535);
        let eocd = (lowest..n.saturating_sub(21))
            .rev()
            .find(|&p| le(bytes, p as u64, 4).ok() == Some(EOCD as u64) && le(bytes, p as u64 + 20, 2).ok().map(|c| p + 22 + c as usize) == Some(n))
            .ok_or_else(|| anyhow!("no end-of-central-directory record"))?;
        let p = eocd as u64;
        let (mut count, mut cd_offset) = (le(bytes, p + 10, 2)?, le(bytes, p + 16, 4)?);
        if eocd >= 20 && le(bytes, p - 20, 4)? == ZIP64_LOCATOR as u64 {
            let z = le(bytes, p - 20 + 8, 8)?;
            if z >= n as u64 || le(bytes, z, 4)? != ZIP64_EOCD as u64 {
                bail!("the zip64 locator points at no zip64 end-of-central-directory record");
            }
            count = le(bytes, z + 32, 8)?;
            cd_offset = le(bytes, z + 48, 8)?;
        }
        // Each central entry is at least 46 bytes: a count beyond that is a damaged file, not a reason to loop.
        if cd_offset >= n as u64 {
            bail!("the central directory offset {cd_offset} is past the end of the file");
        }
        if count > n as u64 / 46 {
            bail!("the central directory claims {count} records, more than the file can hold");
        }
        let mut records = HashMap::new();
        let mut at = cd_offset;
        for _ in 0..count {
            if le(bytes, at, 4)? != CENTRAL as u64 {
                bail!("no central directory header at byte {at}");
            }
            let method = le(bytes, at + 10, 2)? as u16;
            let crc = le(bytes, at + 16, 4)? as u32;
            let (csize, usize_, name_len) = (le(bytes, at + 20, 4)?, le(bytes, at + 24, 4)?, le(bytes, at + 28, 2)?);
            let (extra_len, comment_len) = (le(bytes, at + 30, 2)?, le(bytes, at + 32, 2)?);
            let mut local_offset = le(bytes, at + 42, 4)?;
            let name_at = at + 46;
            let name = bytes
                .get(name_at as usize..(name_at + name_len) as usize)
                .ok_or_else(|| anyhow!("a record name at byte {name_at} is past the end"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            // zip64 extra field: the 64-bit values of whichever 32-bit fields hold 0xFFFFFFFF, in this order.
            let (mut size, mut compressed) = (usize_, csize);
            let mut e = name_at + name_len;
            let extra_end = e + extra_len;
            while e + 4 <= extra_end {
                let (id, len) = (le(bytes, e, 2)?, le(bytes, e + 2, 2)?);
                if id == 1 {
                    let mut f = e + 4;
                    for v in [&mut size, &mut compressed, &mut local_offset] {
                        if *v == 0xFFFF_FFFF && f + 8 <= e + 4 + len {
                            *v = le(bytes, f, 8)?;
                            f += 8;
                        }
                    }
                }
                e += 4 + len;
            }
            if method == 0 && compressed != size {
                bail!("record {name} is stored but its two sizes differ ({compressed}, {size})");
            }
            records.insert(name, Record { method, crc, size, local_offset });
            at = extra_end + comment_len;
        }
        Ok(StoredZip { bytes, records })
    }

    /// Every record name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.records.keys().map(String::as_str)
    }

    /// The bytes of a record (None when there is no record of that name), checked against its CRC-32.
    pub fn get(&self, name: &str) -> Option<Result<&'a [u8]>> {
        let r = self.records.get(name)?;
        Some(self.read(name, r))
    }

    fn read(&self, name: &str, r: &Record) -> Result<&'a [u8]> {
        if r.method != 0 {
            bail!("record {name} is compressed (method {}), and torch.save stores records uncompressed", r.method);
        }
        let b = self.bytes;
        if r.local_offset >= b.len() as u64 || le(b, r.local_offset, 4)? != LOCAL as u64 {
            bail!("record {name}: no local header at byte {}", r.local_offset);
        }
        let start = r.local_offset + 30 + le(b, r.local_offset + 26, 2)? + le(b, r.local_offset + 28, 2)?;
        let data = start
            .checked_add(r.size)
            .filter(|&end| end <= b.len() as u64)
            .map(|end| &b[start as usize..end as usize])
            .ok_or_else(|| anyhow!("record {name} ({} bytes at byte {start}) runs past the end of the file", r.size))?;
        if crc32fast::hash(data) != r.crc {
            bail!("record {name} fails its CRC-32 check");
        }
        Ok(data)
    }
}
