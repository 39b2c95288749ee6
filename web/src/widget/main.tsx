import { render } from 'preact';
import '../style.css';
import { Widget } from './Widget';

render(<Widget />, document.getElementById('app')!);
