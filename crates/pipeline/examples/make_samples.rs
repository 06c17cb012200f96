//! Writes the sample documents in `samples/` (checked in; rerun this after
//! changing a sample):
//!
//! ```text
//! cargo run -p pipeline --example make_samples [OUT_DIR]
//! ```
//!
//! Text samples are written as they are; PDFs are built with lopdf (one
//! `Tj` per line with `T*` line breaks, Helvetica with WinAnsiEncoding, so
//! text extraction gives the lines back); the PNG and ZIP are written byte
//! by byte. The output is the same on every run (no timestamps, fixed PDF
//! ids) except `encrypted.pdf`: lopdf fills the 16 padding bytes of its
//! `/U` entry at random, as the PDF spec allows.

use std::error::Error;
use std::path::{Path, PathBuf};

use lopdf::content::{Content, Operation};
use lopdf::{Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream, StringFormat, dictionary};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const INVOICE_EN_TXT: &str = "\
ACME Widgets Ltd
12 Market Street, London EC1A 1BB, United Kingdom
VAT Reg No: GB 123 4567 82

INVOICE

Invoice Number: INV-2026-0042
Invoice Date: 1 March 2026
Delivery date: 27 February 2026

Bill To:
Globex Corporation
1 Main Road, Springfield

Description                 Qty    Unit Price      Amount
Widget A                     10         45.00      450.00
Consulting (hours)            8        100.00      800.00

Subtotal:                              GBP 1,250.00
VAT (20%):                               GBP 250.00
Total Due:                             GBP 1,500.00

Payment terms: Net 30
IBAN: GB82 WEST 1234 5698 7654 32
";

const INVOICE_DE_TXT: &str = "\
Muster Bürobedarf GmbH
Hauptstraße 5
10115 Berlin

RECHNUNG

Rechnungsnummer: 2026-0042
Rechnungsdatum: 05.02.2026
Zahlbar bis: 19.02.2026

Rechnungsempfänger:
Beispiel AG
Lindenallee 7
20095 Hamburg

Pos  Artikel                 Menge   Einzelpreis    Betrag
1    Kopierpapier A4            20          4,50     90,00
2    Druckerpatrone XL           2         55,00    110,00
3    Kaffee (7 %)               10         10,00    100,00

Nettobetrag                                      300,00 EUR
MwSt. 7 % auf 100,00                               7,00 EUR
MwSt. 19 % auf 200,00                             38,00 EUR
Gesamtbetrag                                     345,00 EUR

Bitte überweisen Sie den Betrag auf IBAN DE89 3704 0044 0532 0130 00.
";

const CREDIT_NOTE_NL_TXT: &str = "\
Jansen Logistiek B.V.
Havenstraat 10, 3011 AA Rotterdam
BTW-nummer: NL004495445B01

CREDITNOTA

Creditnotanummer: CN-2026-007
Datum: 12-03-2026
Betreft factuur F-2026-0311

Retour geleverde goederen                   -250,00
Subtotaal                               -250,00 EUR
BTW 21%                                  -52,50 EUR
Totaal incl. BTW                        -302,50 EUR
";

const RECEIPT_FR_TXT: &str = "\
Boulangerie Dupont SARL
12 rue de la Paix, 75002 Paris
N° TVA intracommunautaire : FR40303265045

TICKET DE CAISSE
Date : 14/03/2026 08:42

2 x Croissant            2,40
1 x Baguette             1,20
1 x Café                 1,80

Total HT                 5,12
TVA 5,5 %                0,28
Total TTC              5,40 €
Espèces                 10,00
Rendu                    4,60

Merci de votre visite !
";

const BANK_STATEMENT_CSV: &str = "\
Date,Description,Amount,Balance
2026-02-01,Opening balance,,\"5,000.00\"
2026-02-03,Invoice INV-2026-0042 ACME Widgets Ltd,\"-1,500.00\",\"3,500.00\"
2026-02-10,Salary February,\"3,200.00\",\"6,700.00\"
2026-02-15,Rent,\"-1,200.00\",\"5,500.00\"
2026-02-28,Closing balance,,\"5,500.00\"
";

const INVOICE_NL_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice>
  <Supplier>Lumen Lighting B.V.</Supplier>
  <VATNumber>NL004495445B01</VATNumber>
  <InvoiceNumber>LL-2026-117</InvoiceNumber>
  <IssueDate>2026-03-05</IssueDate>
  <DueDate>2026-04-04</DueDate>
  <Lines>
    <Line><Description>LED panel 60x60</Description><Quantity>20</Quantity><LineAmount currencyID="EUR">800.00</LineAmount></Line>
  </Lines>
  <NetAmount currencyID="EUR">800.00</NetAmount>
  <TaxAmount currencyID="EUR">168.00</TaxAmount>
  <PayableAmount currencyID="EUR">968.00</PayableAmount>
  <IBAN>NL91ABNA0417164300</IBAN>
</Invoice>
"#;

/// The known invoice the integration tests check field by field.
const INVOICE_EN_PDF: &[&str] = &[
    "Brightline Software Ltd",
    "4 Harbour Walk, Bristol BS1 5TY, United Kingdom",
    "VAT No: GB 980 7806 84",
    "INVOICE",
    "Invoice No: BL-2026-117",
    "Invoice Date: 2026-03-01",
    "Due Date: March 31, 2026",
    "Bill To: Globex Corporation",
    "1 Main Road, Springfield",
    "Description  Qty  Unit price  Amount",
    "Annual licence, Brightline Suite  1  10,000.00  10,000.00",
    "Onboarding workshop (days)  4  500.00  2,000.00",
    "Subtotal  EUR 12,000.00",
    "VAT 20%  EUR 2,400.00",
    "Total due  EUR 14,400.00",
    "Please pay by bank transfer to IBAN GB82 WEST 1234 5698 7654 32 (BIC WESTGB2L).",
    "Thank you for your business.",
];

const RECHNUNG_DE_PDF: &[&str] = &[
    "Elektro Schmidt GmbH · Industriestraße 12 · 80339 München",
    "USt-IdNr.: DE136695976",
    "Rechnung",
    "Rechnungsnummer: RE-2026-0815",
    "Rechnungsdatum: 02.03.2026",
    "Fälligkeitsdatum: 16.03.2026",
    "Kunde: Beispiel AG, Hauptstraße 1, 10115 Berlin",
    "Pos. Bezeichnung Menge Einzelpreis Gesamt",
    "1 Installationsmaterial 1 1.246,00 € 1.246,00 €",
    "2 Montagearbeiten (Stunden) 20 50,00 € 1.000,00 €",
    "Nettobetrag: 2.246,00 €",
    "MwSt. 19 %: 426,74 €",
    "Gesamtbetrag: 2.672,74 €",
    "Bankverbindung: IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX",
];

const CONTRACT_EN_PDF: &[&[&str]] = &[
    &[
        "SERVICE AGREEMENT",
        "This Service Agreement (the \"Agreement\") is made on 1 February 2026",
        "between Brightline Software Ltd (\"Provider\") and Globex Corporation (\"Client\"),",
        "hereinafter together \"the Parties\".",
        "1. Services. The Provider shall deliver hosting and support services.",
        "2. Fees. The Client shall pay EUR 1,000.00 per month, invoiced monthly.",
        "3. Term and termination. The term of the agreement is twelve months;",
        "either party may end it with three months' notice.",
    ],
    &[
        "4. Governing law. This Agreement is governed by the laws of England and Wales.",
        "Signed for and on behalf of the Parties:",
        "Signature (Provider) ______________   Signature (Client) ______________",
    ],
];

/// Encodes text for a WinAnsiEncoding font: Latin-1 maps to itself, the
/// euro sign and typographic quotes have their cp1252 slots.
fn winansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            c if (c as u32) < 0x100 => c as u8,
            _ => b'?',
        })
        .collect()
}

/// A PDF with one page per entry, each line a `Tj` followed by `T*`.
fn text_pdf(pages: &[&[&str]]) -> Result<Document> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids: Vec<Object> = Vec::new();
    for lines in pages {
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("TL", vec![15.into()]),
            Operation::new("Td", vec![56.into(), 780.into()]),
        ];
        for line in *lines {
            operations.push(Operation::new("Tj", vec![Object::String(winansi(line), StringFormat::Literal)]));
            operations.push(Operation::new("T*", vec![]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode()?));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    finish(&mut doc, pages_id, kids, resources_id);
    Ok(doc)
}

/// A one-page PDF with only graphics: what a scanner without OCR produces
/// (minus the image), so text extraction finds nothing.
fn graphics_pdf() -> Result<Document> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let resources_id = doc.add_object(dictionary! {});
    let content = Content {
        operations: vec![
            Operation::new("g", vec![0.8.into()]),
            Operation::new("re", vec![56.into(), 480.into(), 480.into(), 300.into()]),
            Operation::new("f", vec![]),
            Operation::new("g", vec![0.3.into()]),
            Operation::new("re", vec![76.into(), 740.into(), 200.into(), 20.into()]),
            Operation::new("f", vec![]),
        ],
    };
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode()?));
    let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
    finish(&mut doc, pages_id, vec![page_id.into()], resources_id);
    Ok(doc)
}

fn finish(doc: &mut Document, pages_id: lopdf::ObjectId, kids: Vec<Object>, resources_id: lopdf::ObjectId) {
    let count = i64::try_from(kids.len()).unwrap_or(i64::MAX);
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    // A fixed file identifier keeps the output (and the encryption key
    // derived from it) the same on every run.
    let id = Object::String(b"docflow-sample-0001".to_vec(), StringFormat::Hexadecimal);
    doc.trailer.set("ID", vec![id.clone(), id]);
    doc.compress();
}

fn save(doc: &mut Document) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    doc.save_to(&mut out)?;
    Ok(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A 32×32 RGB gradient PNG, zlib with stored (uncompressed) blocks.
fn png() -> Vec<u8> {
    let (w, h) = (32u32, 32u32);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.extend([(x * 8) as u8, (y * 8) as u8, 160]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend(*chunk);
    }
    zlib.extend(adler32(&raw).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &zlib);
    chunk(b"IEND", &[]);
    png
}

/// A ZIP archive holding one stored file: a real, unsupported document type.
fn zip() -> Vec<u8> {
    let name = b"notes.txt";
    let data = b"Nothing to see here: docflow does not open archives.\n";
    let crc = crc32(data);
    let mut out = Vec::new();
    let local = |out: &mut Vec<u8>| {
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time 0, date 1980-01-01
        out.extend(crc.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name);
    };
    local(&mut out);
    out.extend(data);
    let central_offset = out.len() as u32;
    out.extend(0x0201_4b50u32.to_le_bytes());
    out.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    out.extend(crc.to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out.extend((name.len() as u16).to_le_bytes());
    out.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // extra, comment, disk, attrs
    out.extend(0u32.to_le_bytes()); // local header offset
    out.extend(name);
    let central_len = out.len() as u32 - central_offset;
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend(central_len.to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// Bytes of no known format and not text (a fixed LCG, so the file is the
/// same on every run).
fn random_bytes() -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..512)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::write(dir.join(name), bytes)?;
    println!("{name:<28} {:>6} bytes", bytes.len());
    Ok(())
}

fn main() -> Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples"));
    std::fs::create_dir_all(&dir)?;

    write(&dir, "invoice_en.txt", INVOICE_EN_TXT.as_bytes())?;
    write(&dir, "invoice_de.txt", INVOICE_DE_TXT.as_bytes())?;
    write(&dir, "credit_note_nl.txt", CREDIT_NOTE_NL_TXT.as_bytes())?;
    write(&dir, "receipt_fr.txt", RECEIPT_FR_TXT.as_bytes())?;
    write(&dir, "bank_statement_2026-02.csv", BANK_STATEMENT_CSV.as_bytes())?;
    write(&dir, "invoice_nl.xml", INVOICE_NL_XML.as_bytes())?;

    let invoice_en = save(&mut text_pdf(&[INVOICE_EN_PDF])?)?;
    write(&dir, "invoice_en.pdf", &invoice_en)?;
    write(&dir, "rechnung_de.pdf", &save(&mut text_pdf(&[RECHNUNG_DE_PDF])?)?)?;
    write(&dir, "contract_en.pdf", &save(&mut text_pdf(CONTRACT_EN_PDF)?)?)?;
    write(&dir, "scanned_invoice.pdf", &save(&mut graphics_pdf()?)?)?;

    // An upload cut off halfway: header and objects, no xref, no trailer.
    write(&dir, "truncated.pdf", &invoice_en[..invoice_en.len() / 2])?;

    // RC4 128-bit with a user password: unreadable without it.
    let mut secret = text_pdf(&[INVOICE_EN_PDF])?;
    let state = EncryptionState::try_from(EncryptionVersion::V2 {
        document: &secret,
        owner_password: "owner-secret",
        user_password: "user-secret",
        key_length: 128,
        permissions: Permissions::all(),
    })?;
    secret.encrypt(&state)?;
    write(&dir, "encrypted.pdf", &save(&mut secret)?)?;

    write(&dir, "empty.pdf", b"")?;
    write(&dir, "archive.zip", &zip())?;
    write(&dir, "random.bin", &random_bytes())?;
    write(&dir, "photo.png", &png())?;
    Ok(())
}
