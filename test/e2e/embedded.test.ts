// End to end on the embedded defaults: PGlite, the in-process bus and the in-process executor host.
import { startTestApp } from '../harness/app';
import { endToEndSuite } from './suite';

endToEndSuite('embedded PGlite + in-process bus', () => startTestApp());
