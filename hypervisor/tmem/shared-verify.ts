/**
 * Host-verified shared pools (tmem_abi.h, "shared"): a shared pool is named by the uuid of a
 * read-only image the host serves, and a put into it is accepted only if its bytes are what every
 * member would read from that image at (inode = object id, page index). Any other put is refused
 * with TMEM_EPERM (TmemStore.verifySharedPuts wires a verifier to a uuid), so one guest cannot
 * change what another reads through the shared pool.
 */
import { Ext4Image, bytesReader, type ReadAt } from "../ext4/reader.ts";
import { TMEM_PAGE_SIZE } from "./abi.ts";

export interface SharedPageVerifier {
  /** Whether `page` is what the image holds at page `index` of object (lo, hi). */
  verify(lo: number, hi: number, index: number, page: Uint8Array): boolean;
}

/** Verifies puts against an ext4 image (cleancache: object id = inode number, index = page). */
export class Ext4PageVerifier implements SharedPageVerifier {
  private readonly image: Ext4Image;
  /** Puts verified equal to the image, and refused (different bytes, or a page it cannot read). */
  accepted = 0;
  refused = 0;

  constructor(read: ReadAt | Uint8Array) {
    this.image = new Ext4Image(read instanceof Uint8Array ? bytesReader(read) : read);
  }

  /** The image's filesystem uuid: the uuid of its shared pool. */
  get uuid(): string {
    return this.image.sb.uuid;
  }

  verify(lo: number, hi: number, index: number, page: Uint8Array): boolean {
    const want = hi >>> 0 === 0 ? this.image.pageOf(lo >>> 0, index >>> 0, TMEM_PAGE_SIZE) : undefined;
    const ok = want !== undefined && page.length === want.length && Buffer.compare(page, want) === 0;
    if (ok) this.accepted++;
    else this.refused++;
    return ok;
  }
}
