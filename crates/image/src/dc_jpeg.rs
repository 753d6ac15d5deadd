//! JPEG decoding at 1/8 scale from the DC coefficients alone, for Huffman-coded 8-bit
//! greyscale and YCbCr files, sequential or progressive.
//!
//! At 1/8 scale the IDCT of a block is its DC coefficient, so only the DC values are
//! needed. In a sequential scan the AC coefficients are still Huffman-decoded (the
//! bit stream cannot be walked otherwise) but only skipped — never stored,
//! dequantised or transformed; a progressive file's AC scans are not decoded at all.
//! Chroma planes at a lower resolution are upsampled by linear interpolation between
//! block centres (as libjpeg's "fancy" upsampling does), then converted with JFIF's
//! YCbCr equations.
//!
//! Anything else — arithmetic-coded, lossless, 12-bit, CMYK or RGB-coded files, a
//! scan that ends early, a bad Huffman code or restart marker — answers `None`, and
//! the caller decodes the file another way.

use image::{DynamicImage, GrayImage, RgbImage};

/// Bits looked up at once: codes this long or shorter, with their magnitude bits,
/// resolve in one table read.
const LUT_BITS: u32 = 10;

/// The most scans a file may have here (libjpeg's progressive scripts use up to 10).
const MAX_SCANS: u32 = 64;

/// A Huffman table as canonical codes (`maxcode`, `valptr`) and a lookup table.
struct Huffman {
    values: Vec<u8>,
    /// Per code length 1..=16 (index 0 unused): the largest code, or -1.
    maxcode: [i32; 18],
    /// Per code length: index in `values` of the first code minus that code.
    valptr: [i32; 17],
    /// Indexed by the next `LUT_BITS` bits: code length << 8 | symbol, 0 when the
    /// code is longer.
    lut: Box<[u16; 1 << LUT_BITS]>,
}

impl Huffman {
    /// Builds a table from a DHT segment's 16 counts and its symbols.
    fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
        let mut maxcode = [-1i32; 18];
        let mut valptr = [0i32; 17];
        let mut lut = Box::new([0u16; 1 << LUT_BITS]);
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16u32 {
            let n = usize::from(counts[len as usize - 1]);
            valptr[len as usize] = k as i32 - code;
            for _ in 0..n {
                // Canonical codes must fit their length (a malformed table would
                // otherwise give codes that overlap).
                if code >= 1 << len {
                    return None;
                }
                if len <= LUT_BITS {
                    let shift = LUT_BITS - len;
                    let first = (code as usize) << shift;
                    let entry = (len as u16) << 8 | u16::from(values[k]);
                    lut[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        Some(Huffman {
            values: values.to_vec(),
            maxcode,
            valptr,
            lut,
        })
    }

    /// The next symbol; `None` for a code the table does not have.
    #[inline(always)]
    fn decode(&self, bits: &mut Bits) -> Option<u8> {
        bits.fill();
        let entry = self.lut[bits.peek(LUT_BITS) as usize];
        if entry != 0 {
            bits.consume(u32::from(entry >> 8));
            return Some(entry as u8);
        }
        let word = bits.peek(16) as i32;
        for len in LUT_BITS + 1..=16 {
            let code = word >> (16 - len);
            if code <= self.maxcode[len as usize] {
                bits.consume(len);
                let i = usize::try_from(code + self.valptr[len as usize]).ok()?;
                return self.values.get(i).copied();
            }
        }
        None
    }
}

/// A Huffman table for AC coefficients that are only skipped: indexed by the next
/// `LUT_BITS` bits, how many bits the code and its magnitude take (low 5 bits) and
/// how many coefficients they cover (the rest; 64 for end-of-block); 0 when the
/// code and magnitude are longer than `LUT_BITS`.
struct AcSkip {
    huffman: Huffman,
    lut: Box<[u16; 1 << LUT_BITS]>,
}

impl AcSkip {
    fn new(huffman: Huffman) -> AcSkip {
        let mut lut = Box::new([0u16; 1 << LUT_BITS]);
        for (out, &entry) in lut.iter_mut().zip(huffman.lut.iter()) {
            *out = {
                let (len, rs) = (u32::from(entry >> 8), entry & 0xFF);
                let (run, size) = (rs >> 4, rs & 15);
                let bits = len + u32::from(size);
                if entry == 0 || bits > LUT_BITS {
                    0
                } else {
                    let advance = match (run, size) {
                        (0, 0) => 64,
                        (15, 0) => 16,
                        // Other runs with no magnitude are not valid baseline codes;
                        // they end the block as libjpeg treats them.
                        (_, 0) => 64,
                        (run, _) => run + 1,
                    };
                    advance << 5 | bits as u16
                }
            };
        }
        AcSkip { huffman, lut }
    }

    /// Skips one block's 63 AC coefficients.
    #[inline(always)]
    fn skip_block(&self, bits: &mut Bits) -> Option<()> {
        let mut k = 1u32;
        while k < 64 {
            bits.fill();
            let entry = self.lut[bits.peek(LUT_BITS) as usize];
            if entry != 0 {
                bits.consume(u32::from(entry & 31));
                k += u32::from(entry >> 5);
                continue;
            }
            let rs = self.huffman.decode(bits)?;
            let (run, size) = (u32::from(rs >> 4), u32::from(rs & 15));
            if size == 0 {
                if run != 15 {
                    break;
                }
                k += 16;
            } else {
                bits.fill();
                bits.consume(size);
                k += run + 1;
            }
        }
        Some(())
    }
}

/// Entropy-coded data read most significant bit first, with stuffed zero bytes
/// removed. At a marker it stops and feeds zero bits, counting them, so that a
/// scan that ends early can be told apart from one that ends exactly.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// The next bits, aligned to the top.
    buf: u64,
    /// How many bits of `buf` are valid.
    n: u32,
    /// Zero bits fed since a marker (or the end of the data) was reached.
    padding: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits {
            data,
            pos,
            buf: 0,
            n: 0,
            padding: 0,
            at_marker: false,
        }
    }

    /// Tops the buffer up to at least 57 bits: a Huffman code and its magnitude
    /// take at most 32.
    #[inline(always)]
    fn fill(&mut self) {
        if self.n > 32 {
            return;
        }
        // Fast path: eight bytes with no 0xFF among them (so neither a stuffed
        // byte nor a marker) go in at once, as many whole bytes as fit.
        // (At a marker, `pos` is at its 0xFF, so the slow path takes over.)
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(chunk.try_into().expect("eight bytes"));
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080
                    != 0;
            if !has_ff {
                let bytes = (64 - self.n) / 8;
                let bits = bytes * 8;
                self.buf |= (word >> (64 - bits)) << (64 - self.n - bits);
                self.n += bits;
                self.pos += bytes as usize;
                return;
            }
        }
        *self = self.fill_bytewise();
    }

    /// `fill` a byte at a time, near a 0xFF byte. By value, so that the caller's
    /// bit buffer can stay in registers.
    #[cold]
    #[inline(never)]
    fn fill_bytewise(mut self) -> Self {
        while self.n <= 56 {
            let byte = self.next_byte();
            self.buf |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
        self
    }

    fn next_byte(&mut self) -> u8 {
        if !self.at_marker {
            match self.data.get(self.pos) {
                Some(0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                    self.pos += 2;
                    return 0xFF;
                }
                Some(0xFF) | None => self.at_marker = true,
                Some(&b) => {
                    self.pos += 1;
                    return b;
                }
            }
        }
        self.padding += 8;
        0
    }

    #[inline(always)]
    fn peek(&self, bits: u32) -> u64 {
        self.buf >> (64 - bits)
    }

    #[inline(always)]
    fn consume(&mut self, bits: u32) {
        self.buf <<= bits;
        self.n = self.n.saturating_sub(bits);
    }

    /// A magnitude of `size` bits (F.2.2.1's EXTEND); `fill` must have run.
    #[inline(always)]
    fn receive_extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let v = self.peek(size) as i32;
        self.consume(size);
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
    }

    /// Whether bits were used that the data did not have.
    fn overran(&self) -> bool {
        self.n < self.padding
    }

    /// At a restart interval's end: drops the rest of the byte, then expects
    /// restart marker `index` (0-7).
    fn restart(mut self, index: u8) -> Option<Self> {
        if self.overran() {
            return None;
        }
        // What is still buffered must be the fill bits of the interval's last byte
        // (and zeros fed at the marker): whole bytes left over mean the data and
        // the restart interval disagree. Bytes only ever enter the buffer from
        // before the marker, so `pos` is at it (or at its fill bytes).
        if self.n - self.padding >= 8 {
            return None;
        }
        while self.data.get(self.pos) == Some(&0xFF) && self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        if self.data.get(self.pos) != Some(&0xFF)
            || self.data.get(self.pos + 1) != Some(&(0xD0 + index))
        {
            return None;
        }
        Some(Bits::new(self.data, self.pos + 2))
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    /// Blocks a row of `dc` holds: the MCU grid's width.
    stride: usize,
    /// Each block's DC coefficient, quantised.
    dc: Vec<i32>,
    /// Whether a scan has given this component's DC coefficients.
    started: bool,
}

/// The frame header, and each component's DC coefficients as scans fill them in.
struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    components: Vec<Component>,
    hmax: usize,
    vmax: usize,
    mcus_x: usize,
    mcus_y: usize,
}

/// Decodes `jpeg` at 1/8 scale: `ceil(width / 8)` × `ceil(height / 8)` pixels,
/// greyscale or RGB, orientation not applied.
pub(crate) fn decode(jpeg: &[u8]) -> Option<DynamicImage> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut quant_dc = [None::<u16>; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<AcSkip>; 4] = Default::default();
    let mut frame: Option<Frame> = None;
    let (mut restart_interval, mut jfif, mut adobe_transform) = (0usize, false, None);
    let (mut i, mut scans) = (2, 0);
    loop {
        if *jpeg.get(i)? != 0xFF {
            return None;
        }
        while *jpeg.get(i)? == 0xFF {
            i += 1;
        }
        let marker = jpeg[i];
        i += 1;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            continue;
        }
        if marker == 0xD9 {
            return image(frame?, &quant_dc, jfif, adobe_transform);
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(i)?, *jpeg.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        let seg = jpeg.get(i + 2..i + len)?;
        match marker {
            // Baseline, extended sequential and progressive, Huffman-coded.
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return None;
                }
                frame = Some(frame_header(seg, marker == 0xC2)?);
            }
            // Lossless, hierarchical, arithmetic-coded: not here.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => {
                let mut seg = seg;
                while let Some((&class_id, rest)) = seg.split_first() {
                    let counts = rest.get(..16)?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = rest.get(16..16 + total)?;
                    let table = Huffman::new(counts, values)?;
                    let id = usize::from(class_id & 15);
                    match (class_id >> 4, id) {
                        (0, 0..=3) => dc_tables[id] = Some(table),
                        (1, 0..=3) => ac_tables[id] = Some(AcSkip::new(table)),
                        _ => return None,
                    }
                    seg = &rest[16 + total..];
                }
            }
            0xDB => {
                let mut seg = seg;
                while let Some((&pq_tq, rest)) = seg.split_first() {
                    let id = usize::from(pq_tq & 15);
                    let (dc, size) = match pq_tq >> 4 {
                        0 => (u16::from(*rest.first()?), 64),
                        1 => (u16::from_be_bytes([*rest.first()?, *rest.get(1)?]), 128),
                        _ => return None,
                    };
                    *quant_dc.get_mut(id)? = Some(dc);
                    seg = rest.get(size..)?;
                }
            }
            0xDD => {
                restart_interval = usize::from(u16::from_be_bytes([*seg.first()?, *seg.get(1)?]))
            }
            0xE0 if seg.starts_with(b"JFIF\0") => jfif = true,
            0xEE if seg.starts_with(b"Adobe") => adobe_transform = Some(*seg.get(11)?),
            0xDA => {
                // Each scan walks every block of its components, so a hostile file
                // of many tiny scans would cost blocks × scans; real progressive
                // files have about ten.
                scans += 1;
                if scans > MAX_SCANS {
                    return None;
                }
                let tables = Tables {
                    dc: &dc_tables,
                    ac: &ac_tables,
                    restart_interval,
                };
                // The scan's data runs from the end of its header to the next
                // marker, where the next segment starts.
                i = scan(jpeg, i + len, seg, frame.as_mut()?, &tables)?;
                continue;
            }
            _ => {}
        }
        i += len;
    }
}

/// A frame header (SOF segment): 8-bit samples, one or three components.
fn frame_header(seg: &[u8], progressive: bool) -> Option<Frame> {
    let (&precision, rest) = seg.split_first()?;
    let height = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let width = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
    let count = usize::from(*rest.get(4)?);
    if precision != 8 || width == 0 || height == 0 || !(count == 1 || count == 3) {
        return None;
    }
    let mut components = Vec::new();
    for c in rest.get(5..5 + 3 * count)?.chunks_exact(3) {
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return None;
        }
        components.push(Component {
            id: c[0],
            h,
            v,
            quant: usize::from(c[2]),
            stride: 0,
            dc: Vec::new(),
            started: false,
        });
    }
    if count == 1 {
        // A lone component's scan is not interleaved: one block per MCU.
        components[0].h = 1;
        components[0].v = 1;
    }
    let hmax = components.iter().map(|c| c.h).max()?;
    let vmax = components.iter().map(|c| c.v).max()?;
    if components
        .iter()
        .any(|c| hmax % c.h != 0 || vmax % c.v != 0)
    {
        return None;
    }
    let (mcus_x, mcus_y) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
    for c in &mut components {
        // One value per block over the whole MCU grid.
        c.stride = mcus_x * c.h;
        c.dc = vec![0; c.stride * mcus_y * c.v];
    }
    Some(Frame {
        width,
        height,
        progressive,
        components,
        hmax,
        vmax,
        mcus_x,
        mcus_y,
    })
}

/// The Huffman tables and restart interval in force for a scan.
struct Tables<'t> {
    dc: &'t [Option<Huffman>; 4],
    ac: &'t [Option<AcSkip>; 4],
    restart_interval: usize,
}

/// What a scan holds, as far as DC coefficients go.
#[derive(Clone, Copy, PartialEq)]
enum ScanKind {
    /// Sequential: every coefficient of its components' blocks.
    Sequential,
    /// Progressive, the DC coefficients' first scan, their high bits from bit `al`.
    DcFirst(u32),
    /// Progressive, one more bit (`al`) of the DC coefficients.
    DcRefine(u32),
}

/// Reads one scan into `frame`'s DC coefficients: its header is `header`, its data
/// starts at `start`. Returns where the data ends (the next marker).
fn scan(
    jpeg: &[u8],
    start: usize,
    header: &[u8],
    frame: &mut Frame,
    tables: &Tables,
) -> Option<usize> {
    let (&count, rest) = header.split_first()?;
    let count = usize::from(count);
    if count == 0 || count > frame.components.len() {
        return None;
    }
    let &[ss, se, approx] = rest.get(2 * count..2 * count + 3)? else {
        return None;
    };
    let (ah, al) = (u32::from(approx >> 4), u32::from(approx & 15));
    let kind = match (frame.progressive, ss, se) {
        (false, 0, 63) if approx == 0 => ScanKind::Sequential,
        (true, 0, 0) if al <= 13 && ah == 0 => ScanKind::DcFirst(al),
        (true, 0, 0) if al <= 13 => ScanKind::DcRefine(al),
        // AC coefficients, which 1/8 scale does not need.
        (true, 1.., _) => return next_marker(jpeg, start),
        _ => return None,
    };

    // Per component of the scan, in scan order: which frame component, its tables.
    let mut members: Vec<(usize, Option<&Huffman>, Option<&AcSkip>)> = Vec::new();
    for sel in rest.chunks_exact(2).take(count) {
        let index = frame.components.iter().position(|c| c.id == sel[0])?;
        if members.iter().any(|m| m.0 == index) {
            return None;
        }
        let (dc, ac) = (usize::from(sel[1] >> 4), usize::from(sel[1] & 15));
        let dc = tables.dc.get(dc)?.as_ref();
        let ac = tables.ac.get(ac)?.as_ref();
        match kind {
            ScanKind::Sequential if dc.is_none() || ac.is_none() => return None,
            ScanKind::DcFirst(_) if dc.is_none() => return None,
            ScanKind::DcRefine(_) if !frame.components[index].started => return None,
            _ => {}
        }
        members.push((index, dc, ac));
    }
    // An interleaved scan goes MCU by MCU; a single component's, block by block
    // over that component's own extent.
    let (units_x, units_y, interleaved) = if count > 1 {
        (frame.mcus_x, frame.mcus_y, true)
    } else {
        let c = &frame.components[members[0].0];
        let w = (frame.width * c.h).div_ceil(frame.hmax).div_ceil(8);
        let h = (frame.height * c.v).div_ceil(frame.vmax).div_ceil(8);
        (w, h, false)
    };

    let mut bits = Bits::new(jpeg, start);
    let mut pred = [0i32; 3];
    let restart_interval = tables.restart_interval;
    let (mut units_left, mut next_restart) = (restart_interval, 0u8);
    for uy in 0..units_y {
        for ux in 0..units_x {
            if restart_interval > 0 {
                if units_left == 0 {
                    bits = bits.restart(next_restart)?;
                    next_restart = (next_restart + 1) & 7;
                    pred = [0; 3];
                    units_left = restart_interval;
                }
                units_left -= 1;
            }
            for (&(index, dc, ac), pred) in members.iter().zip(&mut pred) {
                let c = &mut frame.components[index];
                let (h, v) = if interleaved { (c.h, c.v) } else { (1, 1) };
                for by in 0..v {
                    let row = (uy * v + by) * c.stride + ux * h;
                    for bx in 0..h {
                        let coef = &mut c.dc[row + bx];
                        match (kind, dc, ac) {
                            (ScanKind::DcRefine(al), _, _) => {
                                bits.fill();
                                if bits.peek(1) == 1 {
                                    *coef |= 1 << al;
                                }
                                bits.consume(1);
                            }
                            (_, Some(dc), ac) => {
                                let size = u32::from(dc.decode(&mut bits)?);
                                if size > 11 {
                                    return None;
                                }
                                bits.fill();
                                *pred = pred.wrapping_add(bits.receive_extend(size));
                                match (kind, ac) {
                                    (ScanKind::DcFirst(al), _) => *coef = *pred << al,
                                    (_, Some(ac)) => {
                                        *coef = *pred;
                                        ac.skip_block(&mut bits)?;
                                    }
                                    _ => return None,
                                }
                            }
                            _ => return None,
                        }
                    }
                }
            }
        }
    }
    if bits.overran() {
        return None;
    }
    for &(index, ..) in &members {
        frame.components[index].started = true;
    }
    next_marker(jpeg, bits.pos)
}

/// Where the entropy-coded data from `i` ends: the next marker that is neither a
/// stuffed zero nor a restart marker.
fn next_marker(jpeg: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let at = i + jpeg.get(i..)?.iter().position(|&b| b == 0xFF)?;
        match *jpeg.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => i = at + 2,
            // Fill bytes before a marker.
            0xFF => i = at + 1,
            _ => return Some(at),
        }
    }
}

/// The decoded frame's pixels, once its scans have given every component's DC.
fn image(
    frame: Frame,
    quant_dc: &[Option<u16>; 4],
    jfif: bool,
    adobe_transform: Option<u8>,
) -> Option<DynamicImage> {
    let components = &frame.components;
    if components.iter().any(|c| !c.started) {
        return None;
    }
    if let [a, b, c] = components.as_slice() {
        // RGB and big-gamut variants by component ids; Adobe's "no transform"
        // means RGB unless JFIF says YCbCr.
        if matches!(
            (a.id, b.id, c.id),
            (82, 71, 66) | (1, 34, 35) | (114, 103, 98)
        ) || (!jfif && adobe_transform.is_some_and(|t| t != 1))
        {
            return None;
        }
    }
    let (out_w, out_h) = (frame.width.div_ceil(8), frame.height.div_ceil(8));
    let mut planes = Vec::with_capacity(components.len());
    for c in components {
        let quant = i32::from((*quant_dc.get(c.quant)?)?);
        // The 1×1 IDCT: the dequantised DC over 8, level-shifted. (In 32 bits: a
        // valid file's DC, at most 2^11, times a quantiser stays far inside; a
        // corrupt one's wraps.)
        let pixels: Vec<u8> = c
            .dc
            .iter()
            .map(|&dc| ((dc.wrapping_mul(quant).wrapping_add(4) >> 3) + 128).clamp(0, 255) as u8)
            .collect();
        let (fx, fy) = (frame.hmax / c.h, frame.vmax / c.v);
        planes.push(upsample(&pixels, c.stride, fx, fy, out_w, out_h));
    }
    let (w, h) = (u32::try_from(out_w).ok()?, u32::try_from(out_h).ok()?);
    match <[Vec<u8>; 3]>::try_from(planes) {
        Ok([y, cb, cr]) => {
            let mut rgb = vec![0; out_w * out_h * 3];
            for (((px, &y), &cb), &cr) in rgb.chunks_exact_mut(3).zip(&y).zip(&cb).zip(&cr) {
                px.copy_from_slice(&ycbcr_to_rgb(y, cb, cr));
            }
            RgbImage::from_raw(w, h, rgb).map(DynamicImage::ImageRgb8)
        }
        Err(mut planes) if planes.len() == 1 => {
            GrayImage::from_raw(w, h, planes.pop()?).map(DynamicImage::ImageLuma8)
        }
        Err(_) => None,
    }
}

/// A plane of `stride` columns scaled up by whole factors to `out_w` × `out_h`,
/// interpolating linearly between sample centres, edges replicated.
fn upsample(
    plane: &[u8],
    stride: usize,
    fx: usize,
    fy: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    let rows = plane.len() / stride;
    if fx == 1 && fy == 1 {
        let mut out = Vec::with_capacity(out_w * out_h);
        for row in plane.chunks_exact(stride).take(out_h) {
            out.extend_from_slice(&row[..out_w]);
        }
        return out;
    }
    // For each output coordinate, the two source samples and the second's weight
    // in 1/256: output centre x + 1/2 sits at (x + 1/2) / f in source samples.
    let taps = |f: usize, n: usize, len: usize| -> Vec<(usize, usize, u32)> {
        (0..n)
            .map(|x| {
                let pos256 = ((2 * x + 1) * 256 / (2 * f)).saturating_sub(128);
                let (i, w) = (pos256 / 256, (pos256 % 256) as u32);
                (i.min(len - 1), (i + 1).min(len - 1), w)
            })
            .collect()
    };
    let (xs, ys) = (taps(fx, out_w, stride), taps(fy, out_h, rows));
    let mut out = Vec::with_capacity(out_w * out_h);
    let mut line = vec![0u32; stride];
    for &(y0, y1, wy) in &ys {
        let (r0, r1) = (
            &plane[y0 * stride..][..stride],
            &plane[y1 * stride..][..stride],
        );
        for ((l, &a), &b) in line.iter_mut().zip(r0).zip(r1) {
            *l = u32::from(a) * (256 - wy) + u32::from(b) * wy;
        }
        for &(x0, x1, wx) in &xs {
            let v = line[x0] * (256 - wx) + line[x1] * wx;
            out.push(((v + (1 << 15)) >> 16) as u8);
        }
    }
    out
}

/// JFIF's YCbCr to RGB in 16-bit fixed point.
#[inline(always)]
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i32::from(y) << 16;
    let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
    let c = |v: i32| ((v + (1 << 15)) >> 16).clamp(0, 255) as u8;
    [
        c(y + 91_881 * cr),
        c(y - 22_554 * cb - 46_802 * cr),
        c(y + 116_130 * cb),
    ]
}

#[cfg(test)]
mod tests {
    use crate::dc_jpeg;
    use crate::testing::{jpeg_of, mean_abs_diff, scene, size};
    use crate::{DecodeLimits, Fit, decode, decode_for};
    use image::{DynamicImage, GrayImage, RgbImage};

    /// A JPEG of `img` from jpeg-encoder: baseline, with these chroma sampling factors
    /// and restart interval (0 for none).
    fn baseline_jpeg(
        img: &RgbImage,
        sampling: jpeg_encoder::SamplingFactor,
        restart: u16,
    ) -> Vec<u8> {
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.set_sampling_factor(sampling);
        if restart > 0 {
            enc.set_restart_interval(restart);
        }
        let (w, h) = (img.width() as u16, img.height() as u16);
        enc.encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        jpeg
    }

    /// jpeg-decoder's 1/8-scale decoding of `jpeg`.
    fn jpeg_decoder_eighth(jpeg: &[u8]) -> DynamicImage {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        d.read_info().unwrap();
        d.scale(1, 1).unwrap();
        let pixels = d.decode().unwrap();
        let info = d.info().unwrap();
        let (w, h) = (u32::from(info.width), u32::from(info.height));
        match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => {
                DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).unwrap())
            }
            _ => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).unwrap()),
        }
    }

    /// The mean of each 8×8 block (partial blocks at the edges: of what is there),
    /// which is what an IDCT at 1/8 scale gives.
    fn block_means(img: &DynamicImage) -> DynamicImage {
        let img = img.to_rgb8();
        let (w, h) = img.dimensions();
        DynamicImage::ImageRgb8(RgbImage::from_fn(w.div_ceil(8), h.div_ceil(8), |bx, by| {
            let (mut sum, mut n) = ([0u32; 3], 0);
            for y in by * 8..(by * 8 + 8).min(h) {
                for x in bx * 8..(bx * 8 + 8).min(w) {
                    let p = img.get_pixel(x, y);
                    for c in 0..3 {
                        sum[c] += u32::from(p[c]);
                    }
                    n += 1;
                }
            }
            image::Rgb(sum.map(|v| ((v + n / 2) / n) as u8))
        }))
    }

    #[test]
    fn dc_decoding_matches_the_scaled_idct() {
        use jpeg_encoder::SamplingFactor as S;
        // Odd sides: partial MCUs at the right and bottom edges.
        let img = scene(1001, 667);
        let limits = DecodeLimits::default();
        let progressive = |sampling| {
            let mut jpeg = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
            enc.set_sampling_factor(sampling);
            enc.set_progressive(true);
            enc.encode(img.as_raw(), 1001, 667, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            jpeg
        };
        let gray = DynamicImage::ImageRgb8(img.clone()).into_luma8();
        let cases = [
            ("4:4:4", baseline_jpeg(&img, S::F_1_1, 0), 1.25, true),
            (
                "4:4:4, restarts",
                baseline_jpeg(&img, S::F_1_1, 5),
                1.25,
                true,
            ),
            ("4:2:0", baseline_jpeg(&img, S::F_2_2, 0), 1.25, false),
            (
                "4:2:2, restarts",
                baseline_jpeg(&img, S::F_2_1, 7),
                1.25,
                false,
            ),
            (
                "4:4:0, restarts",
                baseline_jpeg(&img, S::F_1_2, 1),
                1.25,
                false,
            ),
            // jpeg-encoder writes these as one scan per component.
            ("4:1:1", baseline_jpeg(&img, S::F_4_1, 0), 4.0, false),
            (
                "2×4, restarts",
                baseline_jpeg(&img, S::F_2_4, 3),
                4.0,
                false,
            ),
            ("progressive 4:4:4", progressive(S::F_1_1), 1.25, true),
            ("progressive 4:2:0", progressive(S::F_2_2), 1.25, false),
            (
                "greyscale",
                jpeg_of(&DynamicImage::ImageLuma8(gray)),
                1.25,
                true,
            ),
        ];
        for (label, jpeg, bound, full_chroma) in cases {
            let ours = dc_jpeg::decode(&jpeg).expect(label);
            assert_eq!((ours.width(), ours.height()), (126, 84), "{label}");
            assert_eq!(
                matches!(ours, DynamicImage::ImageLuma8(_)),
                label == "greyscale"
            );
            // jpeg-decoder truncates where libjpeg (and this decoder) round: about half
            // a level lower on each of Y, Cb and Cr. Chroma at a quarter of the width
            // or height differs more: jpeg-decoder replicates it, this decoder
            // interpolates.
            let diff = mean_abs_diff(&ours, &jpeg_decoder_eighth(&jpeg));
            assert!(diff < bound, "{label}: mean difference {diff}");
            if full_chroma {
                // Without subsampled chroma, each pixel is its block's mean.
                let full = decode(&jpeg, &limits).unwrap().image;
                let diff = mean_abs_diff(&ours, &block_means(&full));
                assert!(diff < 0.5, "{label}: mean difference {diff}");
            }
            // decode_for takes this path for thumbnails this small.
            let thumb = decode_for(&jpeg, &limits, &[size(100, 0)], Fit::Contain).unwrap();
            assert_eq!(thumb.image, ours, "{label}");
        }
    }

    #[test]
    fn dc_decoding_refuses_what_it_cannot_read() {
        let img = scene(160, 96);
        let jpeg = baseline_jpeg(&img, jpeg_encoder::SamplingFactor::F_2_2, 4);
        assert!(dc_jpeg::decode(&jpeg).is_some());
        let sos = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        let data = sos + 2 + 12;
        // A scan that stops early (EOI right after half its data) is not padded out.
        let mut short = jpeg[..data + (jpeg.len() - data) / 2].to_vec();
        short.extend_from_slice(&[0xFF, 0xD9]);
        assert!(dc_jpeg::decode(&short).is_none());
        // Restart markers out of order.
        let mut swapped = jpeg.clone();
        let rst = swapped.windows(2).position(|w| w == [0xFF, 0xD0]).unwrap();
        swapped[rst + 1] = 0xD3;
        assert!(dc_jpeg::decode(&swapped).is_none());
        // 12-bit samples.
        let mut deep = jpeg.clone();
        let sof = deep.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        deep[sof + 4] = 12;
        assert!(dc_jpeg::decode(&deep).is_none());
        // RGB-coded components.
        let mut rgb = jpeg.clone();
        for (k, id) in [82, 71, 66].into_iter().enumerate() {
            rgb[sof + 10 + 3 * k] = id;
        }
        let (sof_ids, sos_ids) = (sof + 10, sos + 5);
        for k in 0..3 {
            rgb[sos_ids + 2 * k] = rgb[sof_ids + 3 * k];
        }
        assert!(dc_jpeg::decode(&rgb).is_none());
        // Too many scans: a progressive file's last (AC) scan repeated.
        let mut progressive = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 90);
        enc.set_progressive(true);
        enc.encode(img.as_raw(), 160, 96, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let last = progressive
            .windows(2)
            .rposition(|w| w == [0xFF, 0xDA])
            .unwrap();
        let end = progressive.len() - 2;
        let repeated = |times| {
            let mut out = progressive[..end].to_vec();
            for _ in 0..times {
                out.extend_from_slice(&progressive[last..end]);
            }
            out.extend_from_slice(&[0xFF, 0xD9]);
            out
        };
        assert!(dc_jpeg::decode(&repeated(3)).is_some());
        assert!(dc_jpeg::decode(&repeated(64)).is_none());
    }

    #[test]
    fn dc_decoding_survives_corrupt_files() {
        let img = scene(200, 136);
        let baseline = baseline_jpeg(&img, jpeg_encoder::SamplingFactor::F_2_2, 3);
        let mut progressive = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 80);
        enc.set_progressive(true);
        enc.set_restart_interval(2);
        enc.encode(img.as_raw(), 200, 136, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(dc_jpeg::decode(&progressive).is_some());
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        };
        // Any answer will do, but no panic (debug builds check arithmetic overflow),
        // and no hang.
        for round in 0..3000 {
            let mut bad = if round % 2 == 0 {
                baseline.clone()
            } else {
                progressive.clone()
            };
            for _ in 0..1 + next(4) {
                let i = 2 + next(bad.len() - 2);
                bad[i] = next(256) as u8;
            }
            let _ = dc_jpeg::decode(&bad);
            bad.truncate(next(bad.len()));
            let _ = dc_jpeg::decode(&bad);
        }
    }
}
