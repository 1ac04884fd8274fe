//! Each visibility reaches as far through the companion module as the
//! function does.

mod outer {
    pub mod inner {
        use outband::queue_command;

        #[queue_command]
        pub(super) fn to_parent(value: u8) -> u8 {
            value
        }

        #[queue_command]
        pub(in crate::outer) fn to_path(value: u8) -> u8 {
            value
        }

        #[queue_command]
        pub(self) fn to_self(value: u8) -> u8 {
            value
        }

        #[queue_command]
        pub fn to_all(value: u8) -> u8 {
            value
        }

        pub(crate) fn use_self() -> u8 {
            to_self::call(4)
        }
    }

    pub(crate) fn use_inner() -> u8 {
        inner::to_parent::call(1) + inner::to_path::call(2) + inner::use_self()
    }
}

fn main() {
    assert_eq!(outer::use_inner(), 7);
    assert_eq!(outer::inner::to_all::call(8), 8);
}
